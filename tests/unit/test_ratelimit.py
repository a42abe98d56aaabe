"""The shared token bucket on fakeredis (with Lua), with an injected clock and sleep."""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Sequence

import fakeredis
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.worker.ratelimit import (
    Bucket,
    DestinationCapped,
    Limits,
    RateLimiter,
    RateLimitTimeout,
)
from tests.support.clock import Clock

T0 = 1_700_000_000_000.0


def limits(**overrides: object) -> Limits:
    values: dict[str, object] = {
        "buckets": {"sms": Bucket(10.0, 5), "otp": Bucket(4.0, 2)},
        "min_rate_per_s": 1.0,
    }
    values.update(overrides)
    return Limits(**values)  # type: ignore[arg-type]


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def make(server: fakeredis.FakeServer, clock: Clock, **overrides: object) -> RateLimiter:
    """One limiter as one pod sees it: its own connection to the shared server."""
    client = fakeredis.FakeRedis(server=server)
    return RateLimiter(
        client, limits(**overrides), prefix="t", account="acct", clock=clock, sleep=clock.sleep
    )


def test_burst_is_immediate_then_tokens_come_at_the_rate(server, clock) -> None:
    limiter = make(server, clock)
    grants = [limiter.acquire("sms", timeout_s=10) for _ in range(8)]
    assert [g.waited_ms for g in grants] == [0, 0, 0, 0, 0, 100, 100, 100]
    assert clock.slept == pytest.approx([0.1, 0.1, 0.1])
    assert [g.granted_at_ms - T0 for g in grants[4:]] == pytest.approx([0, 100, 200, 300])


def test_waiters_get_successive_tokens_not_the_same_one(server, clock) -> None:
    # Three pods ask at the same instant with an empty bucket: each is told
    # its own slot (no herd racing for one token).
    pods = [
        RateLimiter(fakeredis.FakeRedis(server=server), limits(buckets={"sms": Bucket(10.0, 1)}),
                    prefix="t", account="acct", clock=clock, sleep=clock.slept.append)
        for _ in range(3)
    ]  # fmt: skip
    pods[0].acquire("sms", timeout_s=0)
    waits = [pod.acquire("sms", timeout_s=10).waited_ms for pod in pods]
    assert waits == pytest.approx([100, 200, 300])


def test_a_token_beyond_the_timeout_is_refused_at_once_without_spending_it(server, clock) -> None:
    limiter = make(server, clock, buckets={"sms": Bucket(2.0, 1)})
    limiter.acquire("sms", timeout_s=0)
    with pytest.raises(RateLimitTimeout) as info:
        limiter.acquire("sms", timeout_s=0.4)
    assert info.value.retry_in_ms == 500 and info.value.product == "sms"
    assert clock.slept == []  # no sleep towards a deadline it cannot meet
    assert limiter.acquire("sms", timeout_s=0.5).waited_ms == pytest.approx(500)


def test_an_idle_bucket_refills_to_its_burst_and_no_more(server, clock) -> None:
    limiter = make(server, clock)
    for _ in range(5):
        limiter.acquire("sms", timeout_s=0)
    clock.advance(60_000)
    assert [limiter.acquire("sms", timeout_s=0).waited_ms for _ in range(5)] == [0] * 5
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("sms", timeout_s=0)


def test_otp_has_its_own_bucket(server, clock) -> None:
    limiter = make(server, clock)
    for _ in range(5):
        limiter.acquire("sms", timeout_s=0)
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("sms", timeout_s=0)
    assert limiter.acquire("otp", timeout_s=0).waited_ms == 0


def _grant_times(limiter: RateLimiter, clock: Clock, clients: int, until_ms: float) -> list[float]:
    """Clients that ask again a random time after each grant; returns grant times (ms)."""
    rng = random.Random(7)
    clock.sleep = lambda s: None  # type: ignore[method-assign]
    events = [(T0 + rng.uniform(0, 50), i) for i in range(clients)]
    heapq.heapify(events)
    grants: list[float] = []
    while events:
        at, client = heapq.heappop(events)
        if at > until_ms:
            break
        clock.now_ms = at
        granted = limiter.acquire("sms", timeout_s=5).granted_at_ms
        grants.append(granted)
        # Mostly back at once (saturating), sometimes idle until the next
        # wave (every 1.5 s), so the bucket refills and waves arrive as bursts.
        wave = (granted - T0) // 1500 * 1500 + 1500 + T0
        heapq.heappush(events, (granted if rng.random() < 0.8 else wave, client))
    return sorted(grants)


def _worst_excess(times: Sequence[float], rate: float, burst: int) -> float:
    """max over every window [t_i, t_j] of count - (burst + rate * length); <= 0 is the bound."""
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            count = j - i + 1
            worst = max(worst, count - (burst + rate * (times[j] - times[i]) / 1000))
    return worst


def test_no_window_admits_more_than_burst_plus_rate_times_its_length(server, clock) -> None:
    rate, burst = 20.0, 5
    limiter = make(server, clock, buckets={"sms": Bucket(rate, burst)})
    times = _grant_times(limiter, clock, clients=6, until_ms=T0 + 10_000)
    assert len(times) > 150
    assert _worst_excess(times, rate, burst) <= 1e-6
    # The window of length burst/rate (Dramatiq's fixed window) holds <= 2 * burst.
    window = burst / rate * 1000
    assert max(sum(1 for t in times if s <= t <= s + window) for s in times) <= 2 * burst


def test_the_window_check_catches_a_fixed_window_counter() -> None:
    # The same check on what a fixed-window limiter admits (burst at the end
    # of one window, burst at the start of the next) fails: the check can fail.
    rate, burst = 20.0, 5
    window_ms = burst / rate * 1000
    times = [window_ms - 1.0] * burst + [window_ms] * burst
    assert _worst_excess(times, rate, burst) > 1


class Provider:
    """The operator's side of a simulated send: a token bucket limit (sends/s, burst;
    0 = none) and random throttles (share), seeded; time is the test's clock (ms)."""

    def __init__(self, clock: Clock, *, limit: float = 0, burst: float = 0, noise: float = 0):
        self.clock, self.limit, self.noise = clock, limit, noise
        self.burst = burst or max(1.0, limit)
        self.tokens, self.at = self.burst, clock()
        self.rng = random.Random(7)
        self.accepted: list[float] = []  # times (ms) of accepted sends
        self.throttled: list[float] = []

    def send(self) -> bool:
        now = self.clock()
        if self.limit:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.limit / 1000)
            self.at = now
            if self.tokens < 1:
                self.throttled.append(now)
                return False
            self.tokens -= 1
        if self.noise and self.rng.random() < self.noise:
            self.throttled.append(now)
            return False
        self.accepted.append(now)
        return True

    def between(self, times: list[float], start_s: float, end_s: float) -> int:
        return sum(1 for t in times if T0 + start_s * 1000 <= t < T0 + end_s * 1000)


def drive(limiter: RateLimiter, provider: Provider, clock: Clock, until_s: float) -> None:
    """Send as fast as the limiter lets one sender, until ``until_s`` (s after T0)."""
    while clock() < T0 + until_s * 1000:
        limiter.acquire("sms", timeout_s=60)
        if not provider.send():
            limiter.on_throttled("sms")


def test_random_throttles_below_the_threshold_keep_the_configured_rate(server, clock) -> None:
    limiter = make(server, clock, buckets={"sms": Bucket(50.0, 5)})
    provider = Provider(clock, noise=0.05)
    drive(limiter, provider, clock, 20)
    sends = provider.between(provider.accepted + provider.throttled, 0, 20)
    assert sends >= 50 * 20  # the burst, then 50/s throughout: never slowed down
    assert provider.between(provider.throttled, 0, 20) > 0.03 * sends  # the noise was there
    assert limiter.status("sms")["rate_per_s"] == 50.0


def test_a_provider_limit_is_found_and_held_just_below(server, clock) -> None:
    limiter = make(server, clock, buckets={"sms": Bucket(100.0, 10)})
    provider = Provider(clock, limit=30, burst=30)
    drive(limiter, provider, clock, 45)
    accepted = provider.between(provider.accepted, 15, 45)
    throttled = provider.between(provider.throttled, 15, 45)
    assert accepted >= 27 * 30  # >= 90 % of the limit once found
    assert throttled <= 0.05 * (accepted + throttled)
    assert provider.between(provider.throttled, 0, 15) > 0  # it was found by being throttled


def test_the_configured_rate_is_back_within_the_recovery_time(server, clock) -> None:
    limiter = make(server, clock, buckets={"sms": Bucket(40.0, 4)}, recovery_s=25.0)
    provider = Provider(clock, limit=12)
    drive(limiter, provider, clock, 20)
    assert limiter.status("sms")["rate_per_s"] < 20  # held near the limit
    provider.limit = 0  # the episode ends
    last = max(provider.throttled)
    drive(limiter, provider, clock, 20 + 30)
    assert max(provider.throttled) == last  # no throttle since
    assert limiter.status("sms")["rate_per_s"] == 40.0
    assert provider.between(provider.accepted, 47, 50) >= 39 * 3


def test_a_lone_throttle_neither_slows_nor_blocks_the_account(server, clock) -> None:
    pod_a, pod_b = make(server, clock), make(server, clock)
    for _ in range(5):
        pod_a.acquire("sms", timeout_s=0)
    clock.advance(2000)
    assert pod_a.on_throttled("sms", retry_after_s=3) == 10.0
    assert pod_b.acquire("sms", timeout_s=10).waited_ms == 0  # no Retry-After block for all
    assert pod_b.status("sms")["rate_per_s"] == 10.0


def test_throttling_judged_a_limit_sets_the_measured_rate_and_blocks_every_pod(
    server, clock
) -> None:
    pod_a, pod_b = make(server, clock), make(server, clock)
    # 2 s at 10/s: 20 requests, then 6 of them come back throttled (30 % > 10 %).
    for _ in range(20):
        pod_a.acquire("sms", timeout_s=10)
    rates = [pod_a.on_throttled("sms", retry_after_s=3) for _ in range(6)]
    assert rates[:2] == [10.0, 10.0]  # below min_throttles: not yet a verdict
    decided = rates[2]
    assert decided < 10.0 and rates[3:] == [decided] * 3  # one decision, then a fresh window
    # 17 accepted over ~1.5 decayed seconds of a 3 s window, x 0.95
    assert 5.0 < decided < 9.5
    # Pod B sees the block and the new rate: its first token after 3 s.
    assert pod_b.acquire("sms", timeout_s=10).waited_ms == pytest.approx(
        3000 + 1000 / decided, rel=0.01
    )


def test_everything_throttled_goes_to_the_floor(server, clock) -> None:
    limiter = make(server, clock, buckets={"sms": Bucket(20.0, 5)})
    provider = Provider(clock, noise=1.0)
    drive(limiter, provider, clock, 10)
    # Halved at most once a verdict, down to the floor (1/s), climbing back slowly
    # from there until throttled again.
    assert limiter.status("sms")["rate_per_s"] < 2.0
    assert len(provider.throttled) < 80  # not 10 s at 20/s (200)


def test_destination_cap_refuses_with_the_time_until_a_slot_frees(server, clock) -> None:
    limiter = make(server, clock, dst_cap_count=2, dst_cap_window_s=60)
    limiter.acquire("sms", dst="56912345678", timeout_s=0)
    clock.advance(10_000)
    limiter.acquire("sms", dst="56912345678", timeout_s=0)
    with pytest.raises(DestinationCapped) as info:
        limiter.acquire("sms", dst="56912345678", timeout_s=0)
    assert info.value.retry_in_ms == 50_000
    assert limiter.acquire("sms", dst="56987654321", timeout_s=0).waited_ms == 0  # others pass
    # 5, -1, refilled to 5 (the cap), -1, refused (-0), other dst -1: 3 left
    assert limiter.status("sms")["tokens"] == pytest.approx(3)
    clock.advance(50_000)
    limiter.acquire("sms", dst="56912345678", timeout_s=0)
    keys = [k.decode() for k in limiter.client.keys("*")]
    assert keys and not any("56912345678" in k for k in keys)
    # Nor a plain hash of it, which trying every number reverses: the digest is keyed.
    plain = hashlib.sha256(f"{limiter.account}\0{'56912345678'}".encode()).hexdigest()[:24]
    assert [k for k in keys if ":dst:" in k] and not any(plain in k for k in keys)


def test_destination_cap_zero_is_off(server, clock) -> None:
    limiter = make(server, clock, dst_cap_count=0)
    for _ in range(5):
        limiter.acquire("sms", dst="56912345678", timeout_s=0)
    assert [k for k in limiter.client.keys("*") if b":dst:" in k] == []


def test_redis_clock_by_default() -> None:
    limiter = RateLimiter(fakeredis.FakeRedis(), limits(), prefix="t", account="a")
    grants = [limiter.acquire("sms", timeout_s=0) for _ in range(5)]
    assert all(g.waited_ms == 0 for g in grants)
    assert abs(grants[0].granted_at_ms - Clock().now_ms) > 0  # a real epoch, not the fake one
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("sms", timeout_s=0)


def test_from_settings_and_products() -> None:
    settings = load_settings({"RATE_OTP_PER_S": "7.5", "RATE_OTP_BURST": "3", "KEY_PREFIX": "p"})
    limiter = RateLimiter.from_settings(settings, fakeredis.FakeRedis())
    assert limiter.limits.buckets["otp"] == Bucket(7.5, 3)
    assert set(limiter.limits.buckets) == {"sms", "otp", "email", "whatsapp"}
    assert limiter.key("otp") == "p:rl:default:otp"
    assert {k.spec.rate_product for k in Kind} == {"sms", "otp", "email", "whatsapp"}
    assert Kind.OTP_EMAIL.spec.rate_product == "otp"
    with pytest.raises(ValueError, match="unknown product"):
        limiter.acquire("fax", timeout_s=0)
