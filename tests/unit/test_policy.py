"""worker.policy.decide: one decision per error class, read by every path."""

from __future__ import annotations

import random

import pytest

from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.policy import RetryPolicy, decide

POLICY = RetryPolicy(max_retries=8, min_backoff_ms=1000, max_backoff_ms=60_000,
                     max_message_age_s=3600)  # fmt: skip


def test_a_transient_error_is_retried_now_and_later_until_the_budget_is_spent() -> None:
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    first = decide(busy, 1, POLICY, random.Random(1))
    assert (first.action, first.retry_now, first.host_failure) == ("retry", True, True)
    assert 500 <= first.delay_ms <= 1000
    spent = decide(busy, 9, POLICY, random.Random(1))
    assert spent.action == "fail"
    assert spent.reason == "retries exhausted after 9 attempts: 503"


def test_retry_after_wins_when_longer_than_the_backoff_and_throttles_the_limiter() -> None:
    limited = e.RateLimited("429", reason="http_429", status_code=429, retry_after_s=30)
    decision = decide(limited, 1, POLICY, random.Random(1))
    assert (decision.action, decision.delay_ms, decision.throttled) == ("retry", 30_000, True)
    assert decision.retry_after_s == 30


def test_a_submit_refusal_has_a_smaller_durable_budget() -> None:
    refused = e.SubmitRefused("no", reason="ESME_RSUBMITFAIL")
    budget = refused.max_durable_retries
    assert budget is not None and budget < POLICY.max_retries
    assert decide(refused, budget, POLICY).action == "retry"
    assert decide(refused, budget + 1, POLICY).action == "fail"


@pytest.mark.parametrize(
    ("error", "pause"),
    [
        (e.AuthenticationFailed("401", reason="http_401"), "account"),
        (e.OperatorLoginFailed("bind", reason="ESME_RBINDFAIL"), "account"),
        (e.ProductDenied("no", reason="ESME_RPROHIBITED"), "product"),
        (e.BalanceExhausted("402", reason="balance"), "balance"),
        (e.SessionDisconnected("qr", reason="DISCONNECTED"), "qr_session"),
    ],
)
def test_an_account_error_pauses_its_scope_and_retries_without_spending_the_budget(
    error: e.AccountError, pause: str
) -> None:
    decision = decide(error, 99, POLICY, random.Random(1))
    assert (decision.action, decision.pause, decision.retry_now) == ("retry", pause, False)


def test_ambiguous_permanent_and_bugs() -> None:
    ambiguous = decide(e.ResponseTimeout("read", reason="read_timeout"), 1, POLICY)
    assert (ambiguous.action, ambiguous.retry_now, ambiguous.host_failure) == (
        "unknown", False, True)  # fmt: skip
    invalid = decide(e.InvalidNumber("bad number", reason="invalid_dst"), 1, POLICY)
    assert (invalid.action, invalid.reason, invalid.host_failure) == ("fail", "bad number", False)
    bug = decide(KeyError("payload"), 1, POLICY)
    assert (bug.action, bug.breaker_ignores) == ("unknown", True)
