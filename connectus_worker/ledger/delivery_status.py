"""A message's delivery status at Connectus, recorded on its job record.

Fed by the SMS status webhook (:mod:`service.events`) and the campaign status poller.
A webhook can come before the send is recorded (the provider index is written when
the send finishes, or by the reconciler minutes later): such a status is kept
*pending* and :class:`PendingStatuses` applies it once the index exists. Statuses are
ranked (:data:`STATUS_RANK`): a late, earlier status never overwrites a final one.
"""

from __future__ import annotations

import redis

from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load

#: Platform statuses in the order a message goes through them; the last three are final.
STATUS_RANK = {
    "PROGRAMADO": 1, "EN_COLA": 2, "ENVIADO_A_CARRIER": 3, "ESPERANDO_RESPUESTA": 4,
    "NUMERO_INVALIDO": 5, "NO_ENTREGABLE": 5, "ENTREGADO": 5,
}  # fmt: skip
FINAL_RANK = 5

# ledger/lua/: each file says its KEYS, ARGV and answer.
_RECORD = load(__package__, "record_status.lua")
_MATCH = load(__package__, "match_statuses.lua")

#: How long a status waits for its send to be recorded (ms): far beyond a lease
#: expiry plus reconciliation; an id still unknown then was not ours.
PENDING_MAX_AGE_MS = 3_600_000


def is_final(status: str | None) -> bool:
    return STATUS_RANK.get(status or "", 0) >= FINAL_RANK


class DeliveryStatuses:
    """Records statuses on job records (rank-ordered, idempotent)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._record = client.register_script(_RECORD)

    def record(self, job_id: str, status: str, now_ms: int) -> bool:
        rank = STATUS_RANK.get(status, 0)
        return bool(self._record(keys=[self.keys.job(job_id)], args=[status, now_ms, rank]))


class PendingStatuses:
    """Statuses that came before their send was recorded, applied once it is."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, max_age_ms: int = PENDING_MAX_AGE_MS
    ) -> None:
        self.client, self.keys, self.max_age_ms = client, keys, max_age_ms
        self._match = client.register_script(_MATCH)

    def match(self, now_ms: int, *, limit: int = 2000) -> tuple[int, int]:
        """One pass over the newest ``limit``: returns (settled, expired). ``now_ms``: epoch ms."""
        matched, expired = self._match(
            keys=[self.keys.status_pending, self.keys.status_pending_since],
            args=[now_ms, limit, self.keys.prefix, self.max_age_ms],
        )
        return int(matched), int(expired)
