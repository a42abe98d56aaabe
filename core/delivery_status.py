"""A message's delivery status at Connectus, recorded on its job record.

Two sources feed it: the SMS status webhook (:mod:`service.events`, which
also publishes to the event stream) and the campaign status poller
(:mod:`worker.campaign_status`) for messages no webhook reported in time.
Statuses are ordered (:data:`STATUS_RANK`): a late, earlier status
(``EN_COLA`` after ``ENTREGADO``) never overwrites a final one.
"""

from __future__ import annotations

import redis

from core.keys import Keys

#: Platform statuses in the order a message goes through them; the last three are final.
STATUS_RANK = {
    "PROGRAMADO": 1, "EN_COLA": 2, "ENVIADO_A_CARRIER": 3, "ESPERANDO_RESPUESTA": 4,
    "NUMERO_INVALIDO": 5, "NO_ENTREGABLE": 5, "ENTREGADO": 5,
}  # fmt: skip
FINAL_RANK = 5

# KEYS: job.  ARGV: status, now_ms, rank.  Answers 1 if the record changed.
_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'delivery_status_rank') or '-1')
if tonumber(ARGV[3]) < current or redis.call('HGET', KEYS[1], 'delivery_status') == ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'delivery_status', ARGV[1], 'delivery_status_at', ARGV[2],
  'delivery_status_rank', ARGV[3])
return 1
"""


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
