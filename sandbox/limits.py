"""The provider's own rate limit: a token bucket per account and product.

A real operator throttles an account that goes over its contracted rate, and
keeps throttling it steadily while it stays over: that is what the worker's
adaptive limiter has to find (docs/ratelimit.md). Random throttles
(``throttle_rate``, :mod:`sandbox.faults`) are the other half: noise.

``limit_per_s`` (0 = off) and ``limit_burst`` (0 = one second's worth) live in
:class:`sandbox.config.FaultConfig`, so ``--limit-per-s`` at start-up and
``PUT /_sandbox/faults`` at run time set them like every other switch. Each
product (``sms`` with OTP SMS, ``email`` with OTP e-mail, ``whatsapp``,
``whatsapp_qr``) of the account has its own bucket of that size; only the
send calls draw on it (one token a call, a v1 bulk call included). Past it, a
v3 SMS send answers ``{"status": "ESME_RTHROTTLED"}`` and every other send a
429 with ``Retry-After`` (whole seconds until the next token, at least 1);
nothing is charged, and the stats count the answer as ``limited``.

Time is the state's clock (epoch s), so an in-process test moves it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

PRODUCT_SMS = "sms"
PRODUCT_EMAIL = "email"
PRODUCT_WHATSAPP = "whatsapp"
PRODUCT_QR = "whatsapp_qr"


def product_of(path: str) -> str:
    """The product a send route draws on, from its path."""
    if "email" in path:
        return PRODUCT_EMAIL
    if "/sms" in path or "send_sms" in path:
        return PRODUCT_SMS
    if "/whatsapp/" in path:
        return PRODUCT_WHATSAPP
    return PRODUCT_QR  # the QR API's /send and /send-message-to-group, at the root


class ProviderLimit:
    """Token buckets by (account, product); ``take`` answers 0 (go) or the wait (s)."""

    __slots__ = ("_buckets", "burst", "clock", "per_s")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.per_s = 0.0
        self.burst = 0.0
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # tokens, at (s)

    def configure(self, per_s: float, burst: int) -> None:
        """Set the limit (tokens/s, 0 = off) and burst (tokens, 0 = ``per_s``); refills all."""
        self.per_s = per_s
        self.burst = float(burst) if burst > 0 else max(1.0, per_s)
        self._buckets.clear()

    @property
    def on(self) -> bool:
        return self.per_s > 0

    def take(self, account: str, product: str) -> float:
        """Take one token: 0.0 when granted, else the time until the next one (s)."""
        now = self.clock()
        key = (account, product)
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.per_s)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.per_s


def retry_after_s(wait_s: float) -> int:
    """Retry-After in whole seconds (HTTP's unit), at least 1."""
    return max(1, math.ceil(wait_s))
