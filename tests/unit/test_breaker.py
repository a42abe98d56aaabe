"""The shared circuit breaker on fakeredis (with Lua), with an injected clock."""

from __future__ import annotations

import fakeredis
import pytest
from structlog.testing import capture_logs

from config import load_settings
from worker.breaker import CircuitBreaker, classify
from worker.connectus.errors import (
    AmbiguousServerError,
    AuthenticationFailed,
    BalanceExhausted,
    ConnectFailed,
    ConnectionDropped,
    InvalidNumber,
    MalformedResponse,
    RateLimited,
    ResponseTimeout,
    ServiceUnavailable,
    Throttled,
)

T0 = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = T0

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(server: fakeredis.FakeServer, clock: Clock, **kwargs: object) -> CircuitBreaker:
    """One pod's breaker: its own connection to the shared server."""
    options: dict[str, object] = {"failure_threshold": 3, "open_ms": 1000, "max_open_ms": 3000,
                                  "probe_lease_ms": 500, "clock": clock}  # fmt: skip
    options.update(kwargs)
    return CircuitBreaker(fakeredis.FakeRedis(server=server), prefix="t", account="acct", **options)  # type: ignore[arg-type]


def outage() -> ServiceUnavailable:
    return ServiceUnavailable("503", reason="http_503", status_code=503)


def open_it(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure(outage())


def test_a_run_of_platform_failures_opens_it_and_a_success_breaks_the_run(server, clock) -> None:
    breaker = make(server, clock)
    for _ in range(2):
        breaker.record_failure(outage())
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure(ConnectFailed("refused", reason="connect_refused"))
    assert breaker.allow().allowed
    with capture_logs() as logs:
        breaker.record_failure(outage())
    decision = breaker.allow()
    assert (decision.allowed, decision.state, decision.retry_in_ms) == (False, "open", 1000)
    assert decision.reason == "ServiceUnavailable: http_503"
    assert [(e["event"], e["reason"], e["open_for_ms"]) for e in logs] == [
        ("breaker.opened", "ServiceUnavailable: http_503", 1000)
    ]
    clock.now_ms += 400
    assert breaker.allow().retry_in_ms == 600


@pytest.mark.parametrize(
    "exc",
    [
        AuthenticationFailed("bad key", reason="http_401", status_code=401),
        BalanceExhausted("no balance", reason="balance", status_code=402),
    ],
)
def test_an_account_error_opens_it_at_once(server, clock, exc) -> None:
    breaker = make(server, clock)
    breaker.record_failure(exc)
    decision = make(server, clock).allow()  # another pod sees it
    assert not decision.allowed and decision.reason.startswith(type(exc).__name__)


@pytest.mark.parametrize(
    "exc",
    [
        RateLimited("429", reason="http_429"),
        Throttled("x", reason="ESME_RTHROTTLED"),
        InvalidNumber("x", reason="NUMERO_INVALIDO"),
        MalformedResponse("x", reason="bad_json"),
    ],
)
def test_answers_from_the_platform_end_the_run(server, clock, exc) -> None:
    breaker = make(server, clock)
    for _ in range(2):
        breaker.record_failure(outage())
    breaker.record_failure(exc)
    for _ in range(2):
        breaker.record_failure(outage())
    assert breaker.allow().allowed and breaker.status()["consecutive_failures"] == 2


def test_classification() -> None:
    for exc in (ResponseTimeout("t", reason="read_timeout"), ConnectionDropped("d", reason="x"),
                AmbiguousServerError("500", reason="http_500")):  # fmt: skip
        assert classify(exc) == "failure"
    assert classify(KeyError("bug")) == "ignored"


def test_our_own_bugs_do_not_count(server, clock) -> None:
    breaker = make(server, clock)
    for _ in range(5):
        breaker.record_failure(KeyError("bug"))
    assert breaker.allow().allowed


def test_half_open_admits_one_probe_across_pods_then_closes(server, clock) -> None:
    pod_a, pod_b = make(server, clock), make(server, clock)
    open_it(pod_a)
    clock.now_ms += 1000
    with capture_logs() as logs:
        probe = pod_a.allow()
        other = pod_b.allow()
    assert probe.allowed and probe.probe and probe.state == "half_open"
    assert (other.allowed, other.state, other.retry_in_ms) == (False, "half_open", 500)
    assert [e["event"] for e in logs] == ["breaker.half_open"]  # logged once, by one pod
    with capture_logs() as logs:
        pod_a.record_success(probe)
    assert [e["event"] for e in logs] == ["breaker.closed"]
    assert pod_b.allow().allowed and pod_b.allow().state == "closed"


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_max(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    cooldowns = []
    for _ in range(3):
        clock.now_ms += 5000
        probe = breaker.allow()
        assert probe.probe
        breaker.record_failure(outage(), probe)
        cooldowns.append(breaker.allow().retry_in_ms)
    assert cooldowns == [2000, 3000, 3000]
    clock.now_ms += 3000
    breaker.record_success(breaker.allow())
    breaker.record_failure(outage())
    open_it(breaker)
    assert breaker.allow().retry_in_ms == 1000  # closing reset the growth


def test_a_dead_probe_frees_its_slot_when_its_lease_ends(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    clock.now_ms += 1000
    assert breaker.allow().probe  # its worker is SIGKILLed: no outcome ever recorded
    clock.now_ms += 499
    assert not breaker.allow().allowed
    clock.now_ms += 1
    assert breaker.allow().probe


def test_release_gives_the_slot_back_at_once(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    clock.now_ms += 1000
    probe = breaker.allow()
    breaker.release(probe)
    assert breaker.allow().probe and breaker.status()["state"] == "half_open"


def test_closing_may_need_several_probe_successes(server, clock) -> None:
    breaker = make(server, clock, successes_to_close=2, probes=2)
    open_it(breaker)
    clock.now_ms += 1000
    first, second = breaker.allow(), breaker.allow()
    assert first.probe and second.probe and not breaker.allow().allowed
    breaker.record_success(first)
    assert breaker.status()["state"] == "half_open"
    breaker.record_success(second)
    assert breaker.status()["state"] == "closed"


def test_late_outcomes_while_open_change_nothing(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    until = breaker.status()["open_until_ms"]
    clock.now_ms += 500
    breaker.record_failure(outage())
    breaker.record_success()
    assert breaker.status()["open_until_ms"] == until and breaker.status()["state"] == "open"


def test_status_for_the_cli(server, clock) -> None:
    breaker = make(server, clock)
    assert breaker.status()["state"] == "closed"
    open_it(breaker)
    assert breaker.status() == {
        "account": "acct",
        "state": "open",
        "reason": "ServiceUnavailable: http_503",
        "since_ms": T0,
        "open_until_ms": T0 + 1000,
        "consecutive_failures": 3,
        "consecutive_opens": 1,
        "probes_in_flight": 0,
    }


def test_from_settings_and_redis_clock() -> None:
    settings = load_settings(
        {"BREAKER_FAILURE_THRESHOLD": "2", "BREAKER_OPEN_S": "2.5", "KEY_PREFIX": "p"}
    )
    breaker = CircuitBreaker.from_settings(settings, fakeredis.FakeRedis())
    assert (breaker.key, breaker.failure_threshold, breaker.open_ms) == (
        "p:breaker:default",
        2,
        2500,
    )
    breaker.record_failure(outage())
    breaker.record_failure(outage())
    decision = breaker.allow()
    assert not decision.allowed and 2400 <= decision.retry_in_ms <= 2500
    assert abs(breaker.status()["since_ms"] - T0) > 0


def test_a_probe_outcome_frees_its_slot_for_the_next_probe(server, clock) -> None:
    breaker = make(server, clock, successes_to_close=2, probes=1)
    open_it(breaker)
    clock.now_ms += 1000
    breaker.record_success(breaker.allow())
    assert breaker.allow().probe  # the slot is free at once, not after the lease


class Monotonic:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_local_cache_trusts_closed_for_its_period_only(server, clock) -> None:
    mono = Monotonic()
    cached = make(server, clock, cache_ms=200, monotonic=mono)
    other_pod = make(server, clock)
    assert cached.allow().allowed
    open_it(other_pod)
    assert cached.allow().allowed  # stale for at most cache_ms: the documented trade
    mono.now_s += 0.201
    decision = cached.allow()
    assert not decision.allowed and decision.state == "open"


def test_a_local_failure_drops_the_cache_and_successes_still_reset_runs(server, clock) -> None:
    mono = Monotonic()
    cached = make(server, clock, cache_ms=200, monotonic=mono)
    other_pod = make(server, clock)
    assert cached.allow().allowed
    other_pod.record_failure(outage())
    other_pod.record_failure(outage())
    cached.record_success()  # the first success of a period is written: the run resets
    other_pod.record_failure(outage())
    assert other_pod.allow().allowed  # 1 failure after the reset, below the threshold of 3
    cached.record_failure(outage())
    cached.record_failure(outage())
    assert not cached.allow().allowed  # its own failures were not hidden by the cache
