"""Connectus balances published in Redis by the workers, for the HTTP service's preflight.

The service holds no Connectus credentials (docs/security.md), so every
``BALANCE_SNAPSHOT_INTERVAL_S`` one worker writes the balance answers (``GET /clients``,
``GET /email/balance``, v1 ``check_balance``, ``check_email_balance``) to
``{prefix}:balance-snapshot`` (JSON, and ``at``, epoch ms); a failed call keeps its
previous figure. The service runs the CLI's :class:`BalanceLookup` over it: a snapshot
older than ``max_age_s``, or missing, gives unknown balances, never a stale refusal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

import redis
import structlog

from connectus_worker.campaign.model import Balance, Transport
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.redis import text
from connectus_worker.worker.connectus.answers_account import Subclient, SubclientList
from connectus_worker.worker.connectus.balances import BalanceLookup
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError

log = structlog.get_logger("connectus_worker.worker.balance_snapshot")


def snapshot_key(keys: Keys, account: str = "default") -> str:
    """The snapshot of ``account`` (``default`` keeps the key of before accounts)."""
    own = "" if account == "default" else f":{account}"
    return f"{keys.prefix}:balance-snapshot{own}"


@dataclass(frozen=True, kw_only=True)
class BalanceSnapshotWriter:
    """One :meth:`run_once` per interval, from the housekeeper."""

    client: ConnectusClient
    redis_client: redis.Redis
    keys: Keys
    interval_s: int
    clock: Callable[[], int] = epoch_ms
    account: str = "default"

    def run_once(self) -> bool:
        """Refresh the snapshot if it is older than the interval; True if it did."""
        key = snapshot_key(self.keys, self.account)
        # SET NX PX: one process per interval does it, however many housekeepers.
        if not self.redis_client.set(f"{key}:lock", "1", nx=True, px=self.interval_s * 1000):
            return False
        fields: dict[Any, Any] = {"at": self.clock()}
        calls: dict[str, Callable[[], Any]] = {
            "clients": lambda: json.dumps(dict(self.client.v3.list_clients().raw)),
            "email": lambda: self.client.v3.email_balance(),
            "v1_sms": lambda: self.client.v1.check_balance(),
            "v1_email": lambda: self.client.v1.check_email_balance(),
        }
        for name, call in calls.items():
            try:
                fields[name] = call()
            except ConnectusError as exc:
                log.warning("balance_snapshot.failed", call=name, error=type(exc).__name__)
        self.redis_client.hset(key, mapping=fields)
        return True


class SnapshotUnavailable(LookupError):
    """No snapshot, a stale one, or one without that figure."""


class SnapshotSource:
    """The snapshot read once, with the shape of the Connectus client's balance calls."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields

    @property
    def v3(self) -> SnapshotSource:
        return self

    @property
    def v1(self) -> SnapshotSource:
        return self

    def list_clients(self) -> SubclientList:
        return SubclientList.from_body(json.loads(self._figure("clients")))

    def get_client(self, *, id_client: str) -> Subclient:
        raise SnapshotUnavailable(f"subclient {id_client} is not in the snapshot")

    def email_balance(self) -> int:
        return int(self._figure("email"))

    def check_balance(self) -> int:
        return int(self._figure("v1_sms"))

    def check_email_balance(self) -> int:
        return int(self._figure("v1_email"))

    def _figure(self, name: str) -> str:
        if name not in self.fields:
            raise SnapshotUnavailable(name)
        return self.fields[name]


@dataclass(frozen=True)
class SnapshotBalanceLookup:
    """The service's preflight lookup: :class:`BalanceLookup` over the freshest snapshot."""

    redis_client: redis.Redis
    keys: Keys
    account: str = "default"  # whose snapshot
    _: KW_ONLY
    max_age_s: int
    clock: Callable[[], int] = epoch_ms

    def __call__(
        self, kind: Kind, id_client: str | None, country: int | None, transport: Transport
    ) -> Balance:
        raw = self.redis_client.hgetall(snapshot_key(self.keys, self.account))
        fields = {text(k): text(v) for k, v in raw.items()}
        if self.clock() - int(fields.get("at") or 0) > self.max_age_s * 1000:
            return Balance("balance unknown: no recent balance snapshot from the workers", None)
        try:
            return BalanceLookup(SnapshotSource(fields))(kind, id_client, country, transport)
        except (SnapshotUnavailable, ValueError) as exc:
            return Balance(f"balance unknown: not in the workers' snapshot ({exc})", None)
