"""Injected faults: latency, 5xx, 429, ESME_RTHROTTLED, SMPP refusals and "dropped after accept".

One :class:`Faults` object per app holds the current :class:`FaultConfig` and one
``random.Random`` seeded from it, so a given seed and request order always give
the same faults. Replacing the config (CLI flags at start, ``PUT /_sandbox/faults``
at run time) reseeds the RNG.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.config import FAULTS_ALL, FaultConfig
from sandbox.limits import ProviderLimit

NONE: Final = 0
SERVER_ERROR: Final = 1
TOO_MANY: Final = 2
THROTTLED: Final = 3
DROP: Final = 4
REFUSED: Final = 5
FAULT_NAMES: Final = (
    "none", "server_error", "too_many_requests", "throttled", "dropped", "refused",
)  # fmt: skip
SERVER_ERROR_CODES: Final = (500, 502, 503, 504)


class Faults:
    """The run-time fault switchboard."""

    __slots__ = ("_cuts", "apis", "config", "limit", "on_lookups", "rng", "sleep")

    def __init__(
        self,
        config: FaultConfig,
        limit: ProviderLimit | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # The provider limit's clock is the state's (the runtime passes it in).
        self.limit = limit if limit is not None else ProviderLimit(time.time)
        # ``sleep(seconds)`` waits out the latency (replaceable, like the clock).
        self.sleep = sleep
        self.set(config)

    def set(self, config: FaultConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.on_lookups = config.applies_to == FAULTS_ALL
        self.apis = frozenset(config.apis)
        self.limit.configure(config.limit_per_s, config.limit_burst)
        # Cumulative thresholds so one draw picks at most one fault.
        a = config.error_rate
        b = a + config.rate_429
        c = b + config.throttle_rate
        d = c + config.drop_rate
        e = d + config.refusal_rate
        self._cuts = (a, b, c, d, e)

    async def delay(self) -> None:
        """Sleep the configured latency (ms) plus uniform jitter (ms)."""
        cfg = self.config
        ms = cfg.latency_ms
        if cfg.jitter_ms:
            ms = max(0.0, ms + self.rng.uniform(-cfg.jitter_ms, cfg.jitter_ms))
        if ms > 0:
            await self.sleep(ms / 1000.0)

    def draw(self) -> int:
        """One of ``NONE``, ``SERVER_ERROR``, ``TOO_MANY``, ``THROTTLED``, ``DROP``,
        ``REFUSED``."""
        a, b, c, d, e = self._cuts
        if e == 0.0:
            return NONE
        r = self.rng.random()
        if r < a:
            return SERVER_ERROR
        if r < b:
            return TOO_MANY
        if r < c:
            return THROTTLED
        if r < d:
            return DROP
        if r < e:
            return REFUSED
        return NONE

    def server_error_code(self) -> int:
        return self.rng.choice(SERVER_ERROR_CODES)

    def charge_before_error(self, code: int) -> bool:
        """Whether an ambiguous 500/504 happened after the message was accepted."""
        return code in (500, 504) and self.rng.random() < self.config.ambiguous_charge_rate


class ConnectionDropped(Exception):
    """Raised after ``http.response.start`` so the server closes the connection."""


class DroppedResponse(Response):
    """Starts a 200 answer with a promised body, then aborts the connection.

    The message behind it was accepted and charged; the client sees only a
    connection closed mid-response (``httpx.RemoteProtocolError``). uvicorn
    closes the transport when the app raises after the response has started.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"status": "ESM', "more_body": True})
        raise ConnectionDropped("sandbox fault: connection dropped after accept")
