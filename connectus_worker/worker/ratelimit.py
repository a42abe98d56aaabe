"""A token bucket per account and product, shared by every process and pod through Redis.

One Lua call per :meth:`RateLimiter.acquire` refills the bucket, checks the optional
per-destination cap and *reserves* a token: "yours, after ``wait_ms``" (the caller sleeps
exactly that; waiters are served in arrival order) or "not within your timeout". OTP has
its own bucket, so a campaign never starves it. The rate adapts to the provider's
throttling (:meth:`RateLimiter.on_throttled`). Design, figures and why not Dramatiq's
limiters: docs/ratelimit.md. Time: Redis's clock (``TIME``) unless ``clock`` (epoch ms).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from connectus_worker.config import Settings
from connectus_worker.config.checks import DEV_CONTENT_HASH_KEY
from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.luascript import load
from connectus_worker.redis import text

# worker/lua/lib_ratelimit.lua holds the functions; admit.lua includes them too.
ACQUIRE = load(__package__, "ratelimit_acquire.lua")
THROTTLED = load(__package__, "ratelimit_throttled.lua")

PRODUCTS = ("sms", "otp", "email", "whatsapp")

_TTL_MS = 3_600_000  # an idle bucket (and its lowered rate) is forgotten after 1 h


class RateLimitRefused(Exception):
    """No send now; retry in ``retry_in_ms`` (a delayed retry, not a failure)."""

    def __init__(self, product: str, retry_in_ms: int, message: str) -> None:
        super().__init__(message)
        self.product = product
        self.retry_in_ms = retry_in_ms


class RateLimitTimeout(RateLimitRefused):
    """The next token for this product is further away than the caller's timeout."""


class DestinationCapped(RateLimitRefused):
    """This destination already had ``count`` sends within the cap window."""


@dataclass(frozen=True, slots=True)
class Bucket:
    rate_per_s: float  # configured (maximum) rate, tokens/s
    burst: int  # tokens


@dataclass(frozen=True, slots=True)
class Limits:
    """Buckets by product; how the rate adapts (docs/ratelimit.md): a floor (tokens/s),
    the share of throttled requests (0..1, and at least ``min_throttles``) taken for the
    provider's limit, the decaying counts' time constant (s), the time back to the
    configured rate (s), and the ``margin`` under the accepted rate measured; the
    destination cap (``dst_cap_count`` sends per ``dst_cap_window_s`` s; 0 = off)."""

    buckets: Mapping[str, Bucket]
    min_rate_per_s: float
    throttle_threshold: float = 0.1
    min_throttles: int = 3
    window_s: float = 3.0
    recovery_s: float = 25.0
    margin: float = 0.1
    dst_cap_count: int = 0
    dst_cap_window_s: int = 60

    @classmethod
    def from_settings(cls, settings: Settings, account: str | None = None) -> Limits:
        """From the ``RATE_*`` and ``DST_CAP_*`` settings; the buckets' rates are
        ``account``'s (``CONNECTUS_<NAME>_RATE_*``; None: the first account's)."""
        rates = settings.account(account or settings.account_names[0])
        return cls(
            buckets={
                p: Bucket(getattr(rates, f"rate_{p}_per_s"), getattr(rates, f"rate_{p}_burst"))
                for p in PRODUCTS
            },
            min_rate_per_s=settings.rate_min_per_s,
            throttle_threshold=settings.rate_throttle_threshold,
            window_s=settings.rate_window_s,
            recovery_s=settings.rate_recovery_s,
            dst_cap_count=settings.dst_cap_count,
            dst_cap_window_s=settings.dst_cap_window_s,
        )


@dataclass(frozen=True, slots=True)
class Acquired:
    """A granted token. ``waited_ms``: how long the caller slept for it (ms);
    ``rate_per_s``: the bucket's effective rate; ``granted_at_ms``: the bucket
    time (epoch ms) the token was earned, i.e. when the send may start."""

    product: str
    waited_ms: float
    rate_per_s: float
    granted_at_ms: float


class RateLimiter:
    """The shared buckets of one account. Thread-safe: its state is in Redis. A success
    writes nothing (requests are counted when granted; the rate climbs back by itself).

    ``clock``: epoch ms, or None to use Redis's clock; ``sleep`` takes seconds (s).
    ``hash_key``: the HMAC key of destination keys (``CONTENT_HASH_KEY``; the
    development key by default, for tools and tests).
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: Limits,
        *,
        prefix: str,
        account: str,
        hash_key: bytes = DEV_CONTENT_HASH_KEY.encode(),
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.limits, self.prefix, self.account = client, limits, prefix, account
        self.clock, self.sleep, self.hash_key = clock, sleep, hash_key
        self._acquire = client.register_script(ACQUIRE)
        self._throttled = client.register_script(THROTTLED)

    @classmethod
    def from_settings(
        cls, settings: Settings, client: redis.Redis, account: str | None = None, **kwargs: Any
    ) -> RateLimiter:
        """The limiter of ``account`` (a name of CONNECTUS_ACCOUNTS; None: the first)
        under ``KEY_PREFIX``."""
        name = account or settings.account_names[0]
        limits = Limits.from_settings(settings, name)
        return cls(client, limits, prefix=settings.key_prefix, account=name,
                   hash_key=settings.content_key, **kwargs)  # fmt: skip

    def key(self, product: str) -> str:
        return f"{self.prefix}:rl:{self.account}:{product}"

    def dst_key(self, product: str, dst: str) -> str:
        # Keyed (CONTENT_HASH_KEY): a phone number or address never appears in a key
        # name (keys show up in MONITOR, SLOWLOG, SCAN and memory reports), and a
        # plain hash of a number is reversed by trying every number.
        digest = recipient_digest(self.hash_key, dst)[:24]  # the account is in the key
        return f"{self.prefix}:rl:{self.account}:{product}:dst:{digest}"

    def acquire(self, product: str, *, dst: str | None = None, timeout_s: float) -> Acquired:
        """Take one token of ``product``, sleeping (at most ``timeout_s``, s) until it is earned.

        One round trip. Raises :class:`RateLimitTimeout` at once (no sleep)
        when the token is further than ``timeout_s`` away, and
        :class:`DestinationCapped` when ``dst`` is over its cap; both carry
        ``retry_in_ms``. Neither consumes a token.
        """
        keys, args = self.take_call(product, dst=dst, timeout_s=timeout_s)
        got = self.granted(product, self._acquire(keys=keys, args=args), timeout_s=timeout_s)
        if got.waited_ms > 0:
            self.sleep(got.waited_ms / 1000)
        return got

    def take_call(
        self, product: str, *, dst: str | None, timeout_s: float
    ) -> tuple[list[str], list[str | int | float]]:
        """KEYS and ARGV of the Lua ``take`` for one token (``lua/ratelimit_acquire.lua``)."""
        bucket, lim = self._bucket(product), self.limits
        dst_key = self.dst_key(product, dst) if dst and lim.dst_cap_count > 0 else ""
        # The member only needs to be unique within one destination's window.
        member = uuid.uuid4().hex if dst_key else ""
        return (
            [self.key(product), dst_key],
            [self._now(), bucket.rate_per_s, bucket.burst, timeout_s * 1000,
             lim.dst_cap_count, lim.dst_cap_window_s * 1000, member, _TTL_MS,
             lim.recovery_s * 1000, lim.window_s * 1000],
        )  # fmt: skip

    def granted(self, product: str, answer: list[Any], *, timeout_s: float) -> Acquired:
        """Read ``take``'s answer: the grant (not yet slept for), or the refusal raised."""
        lim = self.limits
        status, wait_ms, rate = text(answer[0]), float(answer[1]), float(answer[2])
        if status == "dst":
            cap = f"{lim.dst_cap_count} per {lim.dst_cap_window_s} s"
            raise DestinationCapped(product, _ceil_ms(wait_ms), f"{product}: dst cap {cap}")
        if status == "wait":
            why = f"{product}: next token in {wait_ms:.0f} ms > timeout {timeout_s:g} s"
            raise RateLimitTimeout(product, _ceil_ms(wait_ms), why)
        return Acquired(product, wait_ms, rate, float(answer[3]))

    def on_throttled(self, product: str, retry_after_s: float | None = None) -> float:
        """HTTP 429 / ESME_RTHROTTLED: count it; when throttling is the provider's limit, set
        the shared rate below the accepted rate and block until Retry-After (s). Returns
        the effective rate (tokens/s)."""
        bucket, lim = self._bucket(product), self.limits
        answer = self._throttled(
            keys=[self.key(product)],
            args=[self._now(), bucket.rate_per_s, bucket.burst, lim.min_rate_per_s,
                  lim.throttle_threshold, lim.min_throttles, lim.margin,
                  max(0.0, retry_after_s or 0.0) * 1000, _TTL_MS, lim.recovery_s * 1000,
                  lim.window_s * 1000],
        )  # fmt: skip
        return float(answer[0])

    def status(self, product: str) -> dict[str, float | str]:
        """The bucket (for the CLI and logs): tokens, rate now (tokens/s), ts (ms)."""
        raw = self.client.hgetall(self.key(product))
        stored = {text(k): float(text(v)) for k, v in raw.items()}
        bucket = self._bucket(product)
        if self.clock is not None:
            now = float(self.clock())
        else:
            seconds, micros = self.client.time()
            now = seconds * 1000 + micros / 1000
        rate = rate_at(stored.get("base"), stored.get("since", now), now,
                       bucket.rate_per_s, self.limits.recovery_s * 1000)  # fmt: skip
        return {
            "account": self.account,
            "product": product,
            "configured_rate_per_s": bucket.rate_per_s,
            "burst": bucket.burst,
            "rate_per_s": rate,
            "tokens": stored.get("tokens", float(bucket.burst)),
            "valid_from_ms": stored.get("ts", 0.0),
        }

    def _bucket(self, product: str) -> Bucket:
        try:
            return self.limits.buckets[product]
        except KeyError:
            raise ValueError(f"unknown product {product!r}") from None

    def _now(self) -> str:
        # '' tells the script to read Redis's clock.
        return "" if self.clock is None else repr(float(self.clock()))


def rate_at(
    base: float | None, since_ms: float, now_ms: float, max_rate: float, recovery_ms: float
) -> float:
    """The effective rate (tokens/s) at ``now_ms``: ``rate_at`` of lib_ratelimit.lua, for status."""
    if base is None:
        return max_rate
    if now_ms <= since_ms:
        return min(base, max_rate)
    x = (now_ms - since_ms) / recovery_ms
    if x >= 1 or base >= max_rate:
        return max_rate
    return base + (max_rate - base) * x**3


def _ceil_ms(wait_ms: float) -> int:
    return max(1, -int(-wait_ms // 1))
