"""The WhatsApp QR session: pause every QR send while the phone is not paired.

The QR API sends through a WhatsApp session paired by scanning ``GET /qr``.
While ``GET /status`` says it is not connected every QR send is refused, so
they wait (breaker scope ``qr_session``, :mod:`worker.breaker_scopes`) instead
of failing one by one and spending their retries:

- a QR send refused because the session is not connected
  (``SessionDisconnected``) opens the scope through the breaker, like any pause;
- every ``QR_STATUS_INTERVAL_S`` one elected worker process (a Redis lock,
  so one ``GET /status`` per interval across every pod) asks ``GET /status``:
  not connected opens the scope, connected closes it at once, so held QR
  messages go out within one interval of the phone being paired again
  (without waiting for the breaker's half-open probes).

A QR send held by the pause looks again every ``QR_STATUS_INTERVAL_S`` (at
least every second), not only when the breaker's open period ends: the watch may
close the pause any time (:func:`qr_session_recheck_ms`).

A status call that fails (the QR host down, a bad key) decides nothing: the
host's own breaker scope and the account's handle those. The status values
are not documented: ``CONNECTED`` (chosen, the sandbox's) and the other
"ready" words of the usual WhatsApp Web gateways count as connected,
case-insensitively; anything else (``DISCONNECTED``, ``QR_PENDING``...) does not.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis
import structlog

from connectus_worker.config import Settings
from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.breaker_scopes import QR_SESSION
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError, SessionDisconnected

log = structlog.get_logger("connectus_worker.worker.qr_session")

#: ``GET /status`` values that mean the session is paired (compared lower-case).
CONNECTED_STATUSES = frozenset({"connected", "open", "ready", "authenticated", "inchat"})


def qr_session_recheck_ms(settings: Settings) -> dict[str, int]:
    """How often a send held by ``qr_session`` looks again (ms), for the breaker:
    every status check's interval, at least a second; nothing when checks are off."""
    if settings.qr_status_interval_s <= 0:
        return {}
    return {QR_SESSION: int(max(settings.qr_status_interval_s, 1.0) * 1000)}


def is_connected(status: str) -> bool:
    """Whether a ``GET /status`` value means the session can send."""
    return status.strip().lower() in CONNECTED_STATUSES


class QrSessionWatch:
    """Checks ``GET /status`` every ``interval_s`` (s) from one elected process.

    ``tick()`` is called on every housekeeping tick; it costs nothing until the
    interval has passed, then one ``SET NX`` (the election) and, for the winner,
    one HTTP call and at most one breaker script.
    """

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
        """Check if this process's interval has passed and it wins the election;
        returns what :meth:`check` found, None when it did not check."""
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
            status = f"{exc.reason}"
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
