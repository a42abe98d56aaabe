"""The WhatsApp QR session: pause every QR send while the phone is not paired.

While ``GET /status`` says the session is not connected, every QR send is refused,
so they wait (breaker scope ``qr_session``) instead of spending their retries. A
refused send (``SessionDisconnected``) opens the scope through the breaker; every
``QR_STATUS_INTERVAL_S`` one elected process (a Redis lock) asks ``GET /status``:
not connected opens it, connected closes it at once (not waiting for the breaker's
probes). A status call that fails decides nothing (the host's own scope handles it).
The status values are not documented: ``CONNECTED`` (the sandbox's) and the other
"ready" words of the usual WhatsApp Web gateways count as connected.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis
import structlog

from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.breaker_scopes import QR_SESSION
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError, SessionDisconnected

log = structlog.get_logger("connectus_worker.worker.qr_session")

#: ``GET /status`` values that mean the session is paired (compared lower-case).
CONNECTED_STATUSES = frozenset({"connected", "open", "ready", "authenticated", "inchat"})


def is_connected(status: str) -> bool:
    """Whether a ``GET /status`` value means the session can send."""
    return status.strip().lower() in CONNECTED_STATUSES


class QrSessionWatch:
    """Checks ``GET /status`` every ``interval_s`` (s) from one elected process."""

    def __init__(
        self,
        *,
        client: ConnectusClient,
        breaker: CircuitBreaker,
        redis_client: redis.Redis,
        prefix: str,
        interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        account: str = "default",
    ) -> None:
        self.client = client
        self.breaker = breaker
        self.redis = redis_client
        # One election per account (its own QR session); "default" keeps the key of before.
        own = "" if account == "default" else f":{account}"
        self.lock_key = f"{prefix}:qr_session:lock{own}"
        self.interval_s = interval_s
        self.monotonic = monotonic
        self.token = uuid.uuid4().hex
        self._next = 0.0

    def tick(self) -> str | None:
        """Each housekeeping tick: :meth:`check` once this process's interval has passed
        and it wins the election; None when it did not check."""
        if self.interval_s <= 0:
            return None
        now = self.monotonic()
        if now < self._next:
            return None
        self._next = now + self.interval_s
        # The lock lives a little less than an interval, so the next election
        # is open by the time any process looks again.
        hold_ms = max(1, int(self.interval_s * 900))
        if not self.redis.set(self.lock_key, self.token, nx=True, px=hold_ms):
            return None
        return self.check()

    def check(self) -> str:
        """Ask ``GET /status`` and open or close ``qr_session``; returns
        ``connected``, ``disconnected`` or ``unknown`` (the call failed)."""
        try:
            status = self.client.qr.status()
        except SessionDisconnected as exc:
            status = exc.reason
        except ConnectusError as exc:
            log.warning("qr_session.status_failed", error=type(exc).__name__, reason=exc.reason)
            return "unknown"
        if is_connected(status):
            if not self.breaker.is_closed(QR_SESSION):
                self.breaker.close(QR_SESSION, by="qr_status")
                log.warning("qr_session.connected", status=status)
            return "connected"
        self.breaker.trip(QR_SESSION, f"GET /status: {status}"[:200])
        return "disconnected"
