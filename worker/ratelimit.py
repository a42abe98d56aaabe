"""A token bucket per account and product, shared by every process and pod through Redis.

Each bucket (``{prefix}:rl:{account}:{product}``, a hash) holds ``tokens``,
``ts`` (the time, ms, at which ``tokens`` is valid), the effective ``rate``
(tokens/s) and the AIMD bookkeeping. One Lua script call per :meth:`acquire`
refills the bucket, checks the optional per-destination cap and answers
either "yours, after ``wait_ms``" or "not within your timeout". Products:
``sms``, ``otp``, ``email``, ``whatsapp``; OTP has its own bucket so a
campaign can never starve it.

Reservations, not polling: when no token is free, the script still debits
one (``tokens`` goes negative) and returns the time until it is earned; the
caller sleeps exactly that long and sends. Every grant is one round trip,
waiters are served in arrival order, and N waiting threads never wake
together to race for one token (which costs ~N round trips per token). A
request whose wait would exceed its timeout is refused at once, with the
wait, instead of sleeping towards a deadline it cannot meet.

Adaptive (AIMD, as TCP): :meth:`on_throttled` (HTTP 429, ESME_RTHROTTLED)
multiplies the shared rate by ``decrease_factor`` (not below ``min_rate``;
at most once per ``decrease_cooldown_ms``, since one overload answers many
in-flight sends at once), drains the burst and, with Retry-After, freezes the
bucket until then (``ts`` moves into the future: nothing refills before it).
:meth:`on_success` adds ``increase_per_s`` tokens/s per second of successful
sends, up to the configured rate. Sends already reserved before a throttle
still go out at their time: at most ``rate x timeout`` of them, and a 429
costs nothing.

Why not Dramatiq's rate limiters:

- every rejection raises inside the actor and consumes one of the message's
  retries, so a busy hour dead-letters good messages;
- ``ConcurrentRateLimiter`` keeps a slot until its TTL when the holder is
  SIGKILLed (OOM, node loss), shrinking capacity until then;
- ``BucketRateLimiter`` counts per fixed window, so ``limit`` sends at the
  end of one window and ``limit`` at the start of the next pass: up to twice
  the limit within one window length. This bucket admits at most
  ``burst + rate x W`` sends in *any* window of length ``W`` (tested).

Time: by default the script reads Redis's clock (``TIME``), so pods with
skewed clocks share one timeline; tests inject ``clock`` (epoch ms).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from config import Settings
from core.models import Kind
from worker.ratelimit_scripts import ACQUIRE, SUCCEEDED, THROTTLED

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
    """Buckets by product; AIMD floor and steps (tokens/s); destination cap
    (``dst_cap_count`` sends per ``dst_cap_window_s`` s; 0 = off)."""

    buckets: Mapping[str, Bucket]
    min_rate_per_s: float
    increase_per_s: float
    decrease_factor: float
    dst_cap_count: int = 0
    dst_cap_window_s: int = 60
    decrease_cooldown_ms: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """From the ``RATE_*`` and ``DST_CAP_*`` settings."""
        return cls(
            buckets={
                p: Bucket(
                    getattr(settings, f"rate_{p}_per_s"), getattr(settings, f"rate_{p}_burst")
                )
                for p in PRODUCTS
            },
            min_rate_per_s=settings.rate_min_per_s,
            increase_per_s=settings.rate_increase_per_s,
            decrease_factor=settings.rate_decrease_factor,
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
    """The shared buckets of one account. Thread-safe (its only state is a cache of hints).

    ``clock``: epoch ms, or None to use Redis's clock; ``sleep`` takes seconds (s).
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: Limits,
        *,
        prefix: str,
        account: str,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < limits.decrease_factor < 1:
            raise ValueError("decrease_factor must be in (0, 1)")
        self.client, self.limits, self.prefix, self.account = client, limits, prefix, account
        self.clock, self.sleep = clock, sleep
        self._rate_seen: dict[str, float] = {}  # last effective rate seen per product
        self._acquire = client.register_script(ACQUIRE)
        self._throttled = client.register_script(THROTTLED)
        self._succeeded = client.register_script(SUCCEEDED)

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis, **kwargs: Any) -> RateLimiter:
        """The limiter of account ``CONNECTUS_API_USER`` under ``KEY_PREFIX``."""
        account = settings.connectus_api_user or "default"
        limits = Limits.from_settings(settings)
        return cls(client, limits, prefix=settings.key_prefix, account=account, **kwargs)

    def key(self, product: str) -> str:
        return f"{self.prefix}:rl:{self.account}:{product}"

    def dst_key(self, product: str, dst: str) -> str:
        # Hashed: a phone number or address never appears in a key name
        # (keys show up in MONITOR, SLOWLOG, SCAN and memory reports).
        digest = hashlib.sha256(f"{self.account}\0{dst}".encode()).hexdigest()[:24]
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
        """KEYS and ARGV of the Lua ``take`` for one token (see :mod:`worker.ratelimit_scripts`)."""
        bucket, lim = self._bucket(product), self.limits
        dst_key = self.dst_key(product, dst) if dst and lim.dst_cap_count > 0 else ""
        # The member only needs to be unique within one destination's window.
        member = uuid.uuid4().hex if dst_key else ""
        return (
            [self.key(product), dst_key],
            [self._now(), bucket.rate_per_s, bucket.burst, timeout_s * 1000,
             lim.dst_cap_count, lim.dst_cap_window_s * 1000, member, _TTL_MS],
        )  # fmt: skip

    def granted(self, product: str, answer: list[Any], *, timeout_s: float) -> Acquired:
        """Read ``take``'s answer: the grant (not yet slept for), or the refusal raised."""
        lim = self.limits
        status, wait_ms, rate = _text(answer[0]), float(answer[1]), float(answer[2])
        self._rate_seen[product] = rate
        if status == "dst":
            cap = f"{lim.dst_cap_count} per {lim.dst_cap_window_s} s"
            raise DestinationCapped(product, _ceil_ms(wait_ms), f"{product}: dst cap {cap}")
        if status == "wait":
            why = f"{product}: next token in {wait_ms:.0f} ms > timeout {timeout_s:g} s"
            raise RateLimitTimeout(product, _ceil_ms(wait_ms), why)
        return Acquired(product, wait_ms, rate, float(answer[3]))

    def on_throttled(self, product: str, retry_after_s: float | None = None) -> float:
        """HTTP 429 / ESME_RTHROTTLED: decrease the shared rate, block until Retry-After (s).

        Returns the new effective rate (tokens/s).
        """
        bucket, lim = self._bucket(product), self.limits
        answer = self._throttled(
            keys=[self.key(product)],
            args=[self._now(), bucket.rate_per_s, bucket.burst, lim.min_rate_per_s,
                  lim.decrease_factor, max(0.0, retry_after_s or 0.0) * 1000,
                  lim.decrease_cooldown_ms, _TTL_MS],
        )  # fmt: skip
        rate = float(answer[0])
        self._rate_seen[product] = rate
        return rate

    def on_success(self, product: str) -> float:
        """A send went through: climb back towards the configured rate (tokens/s).

        Free while the rate last seen by this process is the configured one
        (no round trip); the next ``acquire`` refreshes that hint.
        """
        bucket, step = self._bucket(product), self.limits.increase_per_s
        if self._rate_seen.get(product, bucket.rate_per_s) >= bucket.rate_per_s:
            return bucket.rate_per_s
        answer = self._succeeded(
            keys=[self.key(product)],
            args=[self._now(), bucket.rate_per_s, bucket.burst, step, _TTL_MS],
        )
        rate = float(_text(answer))
        self._rate_seen[product] = rate
        return rate

    def status(self, product: str) -> dict[str, float | str]:
        """The bucket as stored (for the CLI and logs): tokens, rate (tokens/s), ts (ms)."""
        raw = self.client.hgetall(self.key(product))
        stored = {_text(k): float(_text(v)) for k, v in raw.items()}
        bucket = self._bucket(product)
        return {
            "product": product,
            "configured_rate_per_s": bucket.rate_per_s,
            "burst": bucket.burst,
            "rate_per_s": stored.get("rate", bucket.rate_per_s),
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ceil_ms(wait_ms: float) -> int:
    return max(1, -int(-wait_ms // 1))


def product_for(kind: Kind) -> str:
    """The bucket a job kind draws from: OTP by SMS or e-mail shares the OTP bucket."""
    return _PRODUCT_OF_KIND[kind]


_PRODUCT_OF_KIND = {
    Kind.SMS: "sms",
    Kind.OTP: "otp",
    Kind.OTP_EMAIL: "otp",
    Kind.EMAIL: "email",
    Kind.WHATSAPP: "whatsapp",
    Kind.WHATSAPP_QR: "whatsapp",
    Kind.WHATSAPP_QR_GROUP: "whatsapp",
}
