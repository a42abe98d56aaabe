"""Two Connectus accounts in one deployment, end to end: real Redis, the sandbox
serving both accounts over HTTP (own balances, ledgers and provider limits), and a
real worker process draining both accounts' jobs. One account throttled by the
provider, or out of balance, never slows or pauses the other's sends. Judged by
each account's sandbox ledger and the breaker's shared state in Redis."""

from __future__ import annotations

from collections.abc import Callable

from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from connectus_worker.redis import connect
from connectus_worker.worker.accounts import accounts_status
from connectus_worker.worker.breaker import CircuitBreaker
from devtools.stack import LocalStack
from tests.support.stack_checks import ledger, open_scopes, set_faults, settle
from tests.support.waiting import wait_for

CHILE = "+56 9 8765 4321"
B_USER, B_KEY = "brand_b", "brand-b-sandbox-key"
#: The account "default" is the stack's sandbox user; "brand_b" a second sandbox account.
TWO_ACCOUNTS = {
    "CONNECTUS_ACCOUNTS": "default,brand_b",
    "CONNECTUS_BRAND_B_API_USER": B_USER,
    "CONNECTUS_BRAND_B_API_KEY": B_KEY,
    "RATE_SMS_PER_S": "20",
    "RATE_SMS_BURST": "20",
    "BREAKER_OPEN_S": "60",
    "BREAKER_MAX_OPEN_S": "120",
}
B_RATE_PER_S = 20
PER_ACCOUNT = 60


def two_accounts(make_stack: Callable[..., LocalStack]) -> LocalStack:
    return make_stack(sandbox_flags={"account": f"{B_USER}:{B_KEY}"}, env=TWO_ACCOUNTS,
                      threads=8)  # fmt: skip


def send_both(producer: Producer, count: int) -> tuple[list[str], list[str]]:
    """``count`` SMS of each account, interleaved as they would arrive."""
    a_jobs, b_jobs = [], []
    for i in range(count):
        a_jobs.append(producer.send_sms(CHILE, f"A {i}"))
        b_jobs.append(producer.send_sms(CHILE, f"B {i}", account="brand_b"))
    return a_jobs, b_jobs


def test_a_throttled_account_never_slows_the_other(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = two_accounts(make_stack)
    # The provider holds account A to 2 SMS/s (HTTP 429 / ESME_RTHROTTLED beyond it).
    set_faults(stack, "sandbox", limit_per_s=2, limit_burst=2)
    producer = Producer(stack.settings)
    a_jobs, b_jobs = send_both(producer, PER_ACCOUNT)

    records = settle(producer, b_jobs, timeout_s=30)
    assert {r.state for r in records.values()} == {State.SENT}
    assert {r.account for r in records.values()} == {"brand_b"}
    b_charges = ledger(stack, B_USER)
    assert sorted(c["content_sha256"] for c in b_charges) == sorted(
        {c["content_sha256"] for c in b_charges}
    )  # each once
    assert len(b_charges) == PER_ACCOUNT
    # B went at its own rate: 60 sends at 20/s with a burst of 20 take about 2 s;
    # at A's throttled 2/s they would take 30 s.
    span_s = max(c["at"] for c in b_charges) - min(c["at"] for c in b_charges)
    assert span_s < 3 * (PER_ACCOUNT - 20) / B_RATE_PER_S, span_s
    # ...while A was throttled, and is still draining at the provider's pace.
    a_charged = len(ledger(stack, "sandbox"))
    assert a_charged < PER_ACCOUNT
    with stack.sandbox_client() as client:
        a_stats = client.get("/_sandbox/stats").json()["requests"]
        b_stats = client.get("/_sandbox/stats", headers={"X-Sandbox-Account": B_USER}).json()
    assert sum(r.get("limited", 0) for r in a_stats.values()) > 0
    assert sum(r.get("limited", 0) for r in b_stats["requests"].values()) == 0
    # A's own limiter learnt the provider's limit; B's kept its configured rate.
    settings = stack.settings
    rates = {
        account: {r["product"]: r for r in status["rates"]}["sms"]["rate_per_s"]
        for account, status in _status_by_account(stack).items()
    }
    # (How far A came down depends on the box's pace: lower than configured is the point.)
    assert rates["default"] < rates["brand_b"] == float(settings.rate_sms_per_s)
    assert not [j for j in a_jobs if producer.get_status(j).state is State.FAILED]


def test_an_exhausted_account_pauses_only_itself(make_stack: Callable[..., LocalStack]) -> None:
    stack = two_accounts(make_stack)
    with stack.sandbox_client() as client:  # account A's SMS balance for Chile is spent
        client.put("/_sandbox/balance", json={"product": "sms", "amount": 0, "id_country": 1},
                   headers={"X-Sandbox-Account": "sandbox"}).raise_for_status()  # fmt: skip
    producer = Producer(stack.settings)
    redis_client = connect(stack.settings)
    a_breaker = CircuitBreaker.from_settings(stack.settings, redis_client, "default")
    b_breaker = CircuitBreaker.from_settings(stack.settings, redis_client, "brand_b")
    a_jobs, b_jobs = send_both(producer, 30)

    records = settle(producer, b_jobs, timeout_s=30)
    assert {r.state for r in records.values()} == {State.SENT}
    assert len(ledger(stack, B_USER)) == 30
    scope = wait_for(lambda: open_scopes(a_breaker).get("balance:sms:CL"), timeout_s=15,
                     what="account A's balance:sms:CL open")  # fmt: skip
    assert scope["reason"].startswith("BalanceExhausted")
    assert open_scopes(b_breaker) == {}
    assert ledger(stack, "sandbox") == []  # nothing of A was charged
    states = {producer.get_status(j).state for j in a_jobs}
    assert states <= {State.QUEUED, State.RETRYING, State.SCHEDULED}, states


def _status_by_account(stack: LocalStack) -> dict[str, dict]:
    settings = stack.settings
    return {s["account"]: s for s in accounts_status(settings, connect(settings))}
