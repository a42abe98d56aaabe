"""The adaptive limiter as it was before issue 18 (AIMD), as the bench's baseline only.

Halve the shared rate on a 429 / ESME_RTHROTTLED (at most once a second,
never below ``min_rate``, Retry-After blocking the bucket), add
``increase_per_s`` back per second of success. Same Redis layout and the same
``acquire`` / ``on_throttled`` / ``on_success`` calls as
:class:`worker.ratelimit.RateLimiter`, so :mod:`bench.adaptive` drives both
through one loop. Not a product setting: nothing in ``worker/`` imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from bench.aimd_scripts import ACQUIRE, SUCCEEDED, THROTTLED
from connectus_worker.worker.ratelimit import Acquired, RateLimitTimeout

_TTL_MS = 3_600_000


class AimdLimiter:
    """One product's AIMD bucket of one account (``rate``, ``burst``: tokens/s, tokens)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str,
        rate: float,
        burst: int,
        min_rate: float = 1.0,
        increase_per_s: float = 1.0,
        decrease_factor: float = 0.5,
        cooldown_ms: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key, self.rate, self.burst, self.sleep = key, rate, burst, sleep
        self.min_rate, self.increase, self.factor = min_rate, increase_per_s, decrease_factor
        self.cooldown_ms = cooldown_ms
        self._rate_seen = rate
        self._acquire = client.register_script(ACQUIRE)
        self._throttled = client.register_script(THROTTLED)
        self._succeeded = client.register_script(SUCCEEDED)

    def acquire(self, product: str, *, timeout_s: float) -> Acquired:
        answer: Any = self._acquire(
            keys=[self.key, ""],
            args=["", self.rate, self.burst, timeout_s * 1000, 0, 0, "", _TTL_MS],
        )
        status = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        wait_ms, self._rate_seen = float(answer[1]), float(answer[2])
        if status != "ok":
            raise RateLimitTimeout(product, max(1, int(wait_ms)), f"next token in {wait_ms} ms")
        if wait_ms > 0:
            self.sleep(wait_ms / 1000)
        return Acquired(product, wait_ms, self._rate_seen, float(answer[3]))

    def on_throttled(self, product: str, retry_after_s: float | None = None) -> float:
        answer: Any = self._throttled(
            keys=[self.key],
            args=["", self.rate, self.burst, self.min_rate, self.factor,
                  max(0.0, retry_after_s or 0.0) * 1000, self.cooldown_ms, _TTL_MS],
        )  # fmt: skip
        self._rate_seen = float(answer[0])
        return self._rate_seen

    def on_success(self, product: str) -> float:
        if self._rate_seen >= self.rate:
            return self.rate
        answer: Any = self._succeeded(
            keys=[self.key], args=["", self.rate, self.burst, self.increase, _TTL_MS]
        )
        self._rate_seen = float(answer.decode() if isinstance(answer, bytes) else answer)
        return self._rate_seen
