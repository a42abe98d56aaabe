"""The shared circuit breaker on fakeredis (with Lua), with an injected clock."""

from __future__ import annotations

import fakeredis
import pytest
from structlog.testing import capture_logs

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.worker.breaker import CircuitBreaker, Decision
from connectus_worker.worker.breaker_scopes import V1_BULK, Target, country_of, effect, target_for
from connectus_worker.worker.connectus.errors import (
    AmbiguousServerError,
    AuthenticationFailed,
    BalanceExhausted,
    ConnectFailed,
    ConnectionDropped,
    InvalidNumber,
    MalformedResponse,
    OperatorLoginFailed,
    ProductDenied,
    RateLimited,
    ResponseTimeout,
    ServiceUnavailable,
    Throttled,
)
from tests.support.clock import Clock

T0 = 1_700_000_000_000
#: What the tests send through: an SMS to Chile on v3, unless they say otherwise.
SMS_CL = target_for(Kind.SMS, {"dst_number": "56987654321"})
SMS_MX = target_for(Kind.SMS, {"dst_number": "525512345678"})
OTP_CL = target_for(Kind.OTP, {"dst_number": "56911112222"})
EMAIL = target_for(Kind.EMAIL, {"dst_email": "ana@example.com"})
WHATSAPP = target_for(Kind.WHATSAPP, {"dst_number": "56987654321"})
QR = target_for(Kind.WHATSAPP_QR, {"number": "56987654321"})


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def make(server: fakeredis.FakeServer, clock: Clock, **kwargs: object) -> CircuitBreaker:
    """One pod's breaker: its own connection to the shared server."""
    options: dict[str, object] = {"failure_threshold": 3, "open_ms": 1000, "max_open_ms": 3000,
                                  "probe_lease_ms": 500, "clock": clock}  # fmt: skip
    options.update(kwargs)
    return CircuitBreaker(fakeredis.FakeRedis(server=server), prefix="t", account="acct", **options)  # type: ignore[arg-type]


def outage() -> ServiceUnavailable:
    return ServiceUnavailable("503", reason="http_503", status_code=503)


def open_it(breaker: CircuitBreaker, target: Target = SMS_CL) -> None:
    for _ in range(3):
        breaker.record_failure(outage(), breaker.allow(target))


def seen(target: Target = SMS_CL) -> Decision:
    """The decision of a send admitted while all was closed (an outcome's context)."""
    return Decision(True, 0, "closed", "", target=target)


def test_a_run_of_platform_failures_opens_it_and_a_success_breaks_the_run(server, clock) -> None:
    breaker = make(server, clock)
    for _ in range(2):
        breaker.record_failure(outage(), seen())
    breaker.record_success(seen())
    for _ in range(2):
        breaker.record_failure(ConnectFailed("refused", reason="connect_refused"), seen())
    assert breaker.allow(SMS_CL).allowed
    with capture_logs() as logs:
        breaker.record_failure(outage(), seen())
    decision = breaker.allow(SMS_CL)
    assert (decision.allowed, decision.state, decision.retry_in_ms) == (False, "open", 1000)
    assert decision.reason == "ServiceUnavailable: http_503"
    assert [(e["event"], e["reason"], e["open_for_ms"]) for e in logs] == [
        ("breaker.opened", "ServiceUnavailable: http_503", 1000)
    ]
    clock.now_ms += 400
    assert breaker.allow(SMS_CL).retry_in_ms == 600


@pytest.mark.parametrize(
    "exc",
    [
        AuthenticationFailed("bad key", reason="http_401", status_code=401),
        BalanceExhausted("no balance", reason="balance", status_code=402),
    ],
)
def test_an_account_error_opens_it_at_once(server, clock, exc) -> None:
    breaker = make(server, clock)
    breaker.record_failure(exc, seen())
    decision = make(server, clock).allow(SMS_CL)  # another pod sees it
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
        breaker.record_failure(outage(), seen())
    breaker.record_failure(exc, seen())
    for _ in range(2):
        breaker.record_failure(outage(), seen())
    assert breaker.allow(SMS_CL).allowed
    assert breaker.status()["consecutive_failures"]["host:v3"] == 2


def test_classification() -> None:
    for exc in (ResponseTimeout("t", reason="read_timeout"), ConnectionDropped("d", reason="x"),
                AmbiguousServerError("500", reason="http_500")):  # fmt: skip
        assert effect(exc, QR) == ("failure", "host:qr")
    assert effect(KeyError("bug"), QR) == ("ignored", "")


def test_our_own_bugs_do_not_count(server, clock) -> None:
    breaker = make(server, clock)
    for _ in range(5):
        breaker.record_failure(KeyError("bug"), seen())
    assert breaker.allow(SMS_CL).allowed


def test_half_open_admits_one_probe_across_pods_then_closes(server, clock) -> None:
    pod_a, pod_b = make(server, clock), make(server, clock)
    open_it(pod_a)
    clock.now_ms += 1000
    with capture_logs() as logs:
        probe = pod_a.allow(SMS_CL)
        other = pod_b.allow(SMS_CL)
    assert probe.allowed and probe.probe and probe.state == "half_open"
    assert (other.allowed, other.state, other.retry_in_ms) == (False, "half_open", 500)
    assert [e["event"] for e in logs] == ["breaker.half_open"]  # logged once, by one pod
    with capture_logs() as logs:
        pod_a.record_success(probe)
    assert [e["event"] for e in logs] == ["breaker.closed"]
    assert pod_b.allow(SMS_CL).allowed and pod_b.allow(SMS_CL).state == "closed"


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_max(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    cooldowns = []
    for _ in range(3):
        clock.now_ms += 5000
        probe = breaker.allow(SMS_CL)
        assert probe.probe
        breaker.record_failure(outage(), probe)
        cooldowns.append(breaker.allow(SMS_CL).retry_in_ms)
    assert cooldowns == [2000, 3000, 3000]
    clock.now_ms += 3000
    breaker.record_success(breaker.allow(SMS_CL))
    breaker.record_failure(outage(), seen())
    open_it(breaker)
    assert breaker.allow(SMS_CL).retry_in_ms == 1000  # closing reset the growth


def test_a_dead_probe_frees_its_slot_when_its_lease_ends(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    clock.now_ms += 1000
    assert breaker.allow(SMS_CL).probe  # its worker is SIGKILLed: no outcome ever recorded
    clock.now_ms += 499
    assert not breaker.allow(SMS_CL).allowed
    clock.now_ms += 1
    assert breaker.allow(SMS_CL).probe


def test_release_gives_the_slot_back_at_once(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    clock.now_ms += 1000
    probe = breaker.allow(SMS_CL)
    breaker.release(probe)
    assert breaker.allow(SMS_CL).probe and breaker.status()["state"] == "half_open"


def test_closing_may_need_several_probe_successes(server, clock) -> None:
    breaker = make(server, clock, successes_to_close=2, probes=2)
    open_it(breaker)
    clock.now_ms += 1000
    first, second = breaker.allow(SMS_CL), breaker.allow(SMS_CL)
    assert first.probe and second.probe and not breaker.allow(SMS_CL).allowed
    breaker.record_success(first)
    assert breaker.status()["state"] == "half_open"
    breaker.record_success(second)
    assert breaker.status()["state"] == "closed"


def test_late_outcomes_while_open_change_nothing(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker)
    until = breaker.status()["scopes"][0]["open_until_ms"]
    clock.now_ms += 500
    breaker.record_failure(outage(), seen())
    breaker.record_success(seen())
    [scope] = breaker.status()["scopes"]
    assert (scope["open_until_ms"], scope["state"]) == (until, "open")


def test_status_for_the_cli(server, clock) -> None:
    breaker = make(server, clock)
    assert breaker.status()["state"] == "closed"
    open_it(breaker)
    breaker.record_failure(BalanceExhausted("x", reason="http_402"), seen(EMAIL))
    assert breaker.status() == {
        "account": "acct",
        "state": "open",
        "scopes": [
            {"scope": "balance:email", "state": "open", "reason": "BalanceExhausted: http_402",
             "since_ms": T0, "open_until_ms": T0 + 1000, "consecutive_opens": 1,
             "probes_in_flight": 0},
            {"scope": "host:v3", "state": "open", "reason": "ServiceUnavailable: http_503",
             "since_ms": T0, "open_until_ms": T0 + 1000, "consecutive_opens": 1,
             "probes_in_flight": 0},
        ],
        "consecutive_failures": {"host:v3": 3, "host:v1": 0, "host:qr": 0},
    }  # fmt: skip


def test_from_settings_and_redis_clock() -> None:
    settings = load_settings(
        {"BREAKER_FAILURE_THRESHOLD": "2", "BREAKER_OPEN_S": "2.5", "KEY_PREFIX": "p"}
    )
    breaker = CircuitBreaker.from_settings(settings, fakeredis.FakeRedis())
    assert (breaker.key("account"), breaker.failure_threshold, breaker.open_ms) == (
        "p:breaker:default:account",
        2,
        2500,
    )
    breaker.record_failure(outage(), seen())
    breaker.record_failure(outage(), seen())
    decision = breaker.allow(SMS_CL)
    assert not decision.allowed and 2400 <= decision.retry_in_ms <= 2500
    assert abs(breaker.status()["scopes"][0]["since_ms"] - T0) > 0


def test_a_probe_outcome_frees_its_slot_for_the_next_probe(server, clock) -> None:
    breaker = make(server, clock, successes_to_close=2, probes=1)
    open_it(breaker)
    clock.now_ms += 1000
    breaker.record_success(breaker.allow(SMS_CL))
    assert breaker.allow(SMS_CL).probe  # the slot is free at once, not after the lease


class Monotonic:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_local_cache_trusts_closed_for_its_period_only(server, clock) -> None:
    mono = Monotonic()
    cached = make(server, clock, cache_ms=200, monotonic=mono)
    other_pod = make(server, clock)
    assert cached.allow(SMS_CL).allowed
    open_it(other_pod)
    assert cached.allow(SMS_CL).allowed  # stale for at most cache_ms: the documented trade
    mono.now_s += 0.201
    decision = cached.allow(SMS_CL)
    assert not decision.allowed and decision.state == "open"


def test_a_local_failure_drops_the_cache_and_successes_still_reset_runs(server, clock) -> None:
    mono = Monotonic()
    cached = make(server, clock, cache_ms=200, monotonic=mono)
    other_pod = make(server, clock)
    assert cached.allow(SMS_CL).allowed
    other_pod.record_failure(outage(), seen())
    other_pod.record_failure(outage(), seen())
    cached.record_success(seen())  # the first success of a period is written: the run resets
    other_pod.record_failure(outage(), seen())
    assert other_pod.allow(SMS_CL).allowed  # 1 failure after the reset, below the threshold of 3
    cached.record_failure(outage(), seen())
    cached.record_failure(outage(), seen())
    assert not cached.allow(SMS_CL).allowed  # its own failures were not hidden by the cache


# --- scopes: a pause holds back only what it is about ----------------------------


def test_an_sms_balance_exhausted_for_one_country_pauses_that_country_only(server, clock) -> None:
    breaker = make(server, clock)
    breaker.record_failure(BalanceExhausted("no", reason="http_402"), breaker.allow(SMS_CL))
    for held in (SMS_CL, OTP_CL):  # an SMS OTP draws on the same balance
        decision = breaker.allow(held)
        assert (decision.allowed, decision.scope) == (False, "balance:sms:CL")
    for free in (SMS_MX, EMAIL, WHATSAPP, QR, Target("v1", "sms", country="MX")):
        assert breaker.allow(free).allowed, free
    assert not breaker.allow(V1_BULK).allowed  # v1 bulk sends to Chile


def test_a_subclient_balance_is_its_own_scope(server, clock) -> None:
    breaker = make(server, clock)
    sub = target_for(Kind.SMS, {"dst_number": "56987654321", "id_client": "ab12cd34"})
    breaker.record_failure(BalanceExhausted("no", reason="http_402"), breaker.allow(sub))
    assert breaker.allow(sub).scope == "balance:sms:CL@ab12cd34"
    assert breaker.allow(SMS_CL).allowed  # the account's own balance still pays


def test_email_and_whatsapp_balances_pause_their_product(server, clock) -> None:
    breaker = make(server, clock)
    breaker.record_failure(BalanceExhausted("no", reason="http_402"), breaker.allow(EMAIL))
    otp_email = target_for(Kind.OTP_EMAIL, {"dst_email": "ana@example.com"})
    assert breaker.allow(otp_email).scope == "balance:email"
    assert breaker.allow(SMS_CL).allowed and breaker.allow(WHATSAPP).allowed


@pytest.mark.parametrize(
    ("exc", "scope"),
    [
        (AuthenticationFailed("bad key", reason="http_401", status_code=401), "account"),
        (AuthenticationFailed("denied", reason="http_403", status_code=403), "account"),
        (OperatorLoginFailed("login", reason="ESME_RBINDFAIL"), "account"),
        (ProductDenied("no", reason="ESME_RPROHIBITED"), "product:sms"),
        (ProductDenied("no", reason="ESME_RSERTYPUNAUTH"), "product:sms"),
        (BalanceExhausted("no", reason="http_402"), "balance:sms:CL"),
    ],
)
def test_each_cause_trips_its_scope_at_once(server, clock, exc, scope) -> None:
    breaker = make(server, clock)
    assert effect(exc, SMS_CL) == ("trip", scope)
    breaker.record_failure(exc, breaker.allow(SMS_CL))
    assert [s["scope"] for s in make(server, clock).status()["scopes"]] == [scope]
    held = {"account": [SMS_CL, SMS_MX, OTP_CL, EMAIL, WHATSAPP, QR, V1_BULK],
            "product:sms": [SMS_CL, SMS_MX, OTP_CL, V1_BULK],
            "balance:sms:CL": [SMS_CL, OTP_CL, V1_BULK]}[scope]  # fmt: skip
    for target in [SMS_CL, SMS_MX, OTP_CL, EMAIL, WHATSAPP, QR, V1_BULK]:
        assert breaker.allow(target).allowed is (target not in held), target


def test_a_qr_host_streak_does_not_pause_v3_or_v1(server, clock) -> None:
    breaker = make(server, clock)
    open_it(breaker, QR)
    assert breaker.allow(QR).scope == "host:qr"
    for target in (SMS_CL, EMAIL, WHATSAPP, V1_BULK):
        assert breaker.allow(target).allowed
    # Streaks are per host: failures on v1 and v3 interleaved never add up.
    for _ in range(2):
        breaker.record_failure(outage(), breaker.allow(V1_BULK))
        breaker.record_failure(outage(), breaker.allow(SMS_CL))
    assert breaker.allow(V1_BULK).allowed and breaker.allow(SMS_CL).allowed
    assert breaker.status()["consecutive_failures"] == {"host:v3": 2, "host:v1": 2, "host:qr": 3}


def test_a_probe_of_the_account_that_meets_an_empty_balance_closes_the_account(
    server, clock
) -> None:
    """A 402 proves the key works: the account closes, the balance scope opens."""
    breaker = make(server, clock)
    breaker.record_failure(AuthenticationFailed("k", reason="http_401"), breaker.allow(SMS_CL))
    clock.now_ms += 1000
    probe = breaker.allow(SMS_CL)
    assert probe.probed == ("account",)
    breaker.record_failure(BalanceExhausted("no", reason="http_402"), probe)
    assert [s["scope"] for s in breaker.status()["scopes"]] == ["balance:sms:CL"]
    assert breaker.allow(SMS_MX).allowed


def test_a_platform_failure_of_a_probe_says_nothing_about_the_balance(server, clock) -> None:
    breaker = make(server, clock)
    breaker.record_failure(BalanceExhausted("no", reason="http_402"), breaker.allow(SMS_CL))
    clock.now_ms += 1000
    probe = breaker.allow(SMS_CL)
    breaker.record_failure(outage(), probe)
    [scope] = breaker.status()["scopes"]
    assert (scope["scope"], scope["state"], scope["probes_in_flight"]) == (
        "balance:sms:CL", "half_open", 0)  # fmt: skip
    assert breaker.allow(SMS_CL).probe  # the slot came back at once


def test_a_send_covered_by_two_half_open_scopes_probes_both_or_neither(server, clock) -> None:
    breaker = make(server, clock)
    breaker.record_failure(BalanceExhausted("no", reason="http_402"), breaker.allow(SMS_CL))
    breaker.record_failure(ProductDenied("no", reason="ESME_RPROHIBITED"), breaker.allow(SMS_MX))
    clock.now_ms += 1000
    mexico = breaker.allow(SMS_MX)  # probes product:sms only
    assert mexico.probed == ("product:sms",)
    chile = breaker.allow(SMS_CL)  # product:sms has no slot: takes none of balance's
    assert (chile.allowed, chile.state, chile.scope) == (False, "half_open", "product:sms")
    probes = {s["scope"]: s["probes_in_flight"] for s in breaker.status()["scopes"]}
    assert probes == {"product:sms": 1, "balance:sms:CL": 0}
    breaker.release(mexico)
    both = breaker.allow(SMS_CL)
    assert set(both.probed) == {"product:sms", "balance:sms:CL"}
    breaker.record_success(both)  # one success closes both
    assert breaker.status()["scopes"] == []


def test_an_operator_closes_a_scope(server, clock) -> None:
    breaker = make(server, clock)
    breaker.record_failure(BalanceExhausted("no", reason="http_402"), breaker.allow(SMS_CL))
    assert not breaker.allow(SMS_CL).allowed
    assert make(server, clock).close("balance:sms:CL") == "open"
    assert breaker.allow(SMS_CL).allowed and breaker.status()["scopes"] == []
    assert breaker.close("balance:sms:CL") == "closed"


@pytest.mark.parametrize(
    ("number", "country"),
    [("56987654321", "CL"), ("525512345678", "MX"), ("14155550100", "US"),
     ("5930991234567", "EC"), ("+51 912 345 678", "PE"), ("999", "ZZ"), (None, "ZZ")],
)  # fmt: skip
def test_the_country_is_the_calling_code_s(number, country) -> None:
    assert country_of(number) == country


def test_the_target_of_each_kind() -> None:
    assert target_for(Kind.OTP, {"dst_number": "56911112222"}).balance_scope == "balance:sms:CL"
    email = target_for(Kind.OTP_EMAIL, {"dst_email": "a@b.cl"})
    for scope in ("account", "host:v3", "product:email", "balance:email"):
        assert email.covered_by(scope)
    assert not email.covered_by("qr_session") and not email.covered_by("balance:sms:CL")
    for scope in ("account", "host:qr", "qr_session", "product:whatsapp_qr", "balance:whatsapp_qr"):
        assert QR.covered_by(scope)
    assert target_for(Kind.WHATSAPP, {"id_client": "x1"}).balance_scope == "balance:whatsapp@x1"
