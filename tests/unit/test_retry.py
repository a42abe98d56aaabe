"""The in-process retry layer: what is retried, how long it waits, what it re-raises."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import tenacity

from connectus_worker.worker.connectus import errors
from connectus_worker.worker.retry import build_retrying


class Flaky:
    """Raises the given errors in turn, then returns "ok"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def busy(retry_after_s: float | None = None) -> errors.ConnectusError:
    return errors.RateLimited("429", reason="http_429", retry_after_s=retry_after_s)


def unavailable() -> errors.ConnectusError:
    return errors.ServiceUnavailable("503", reason="http_503")


def make(
    sleeps: list[float], attempts: int = 4, initial_ms: int = 200, max_ms: int = 1000, **kw: Any
) -> tenacity.Retrying:
    return build_retrying(
        attempts=attempts,
        initial_backoff_ms=initial_ms,
        max_backoff_ms=max_ms,
        sleep=sleeps.append,
        **kw,
    )


def at(fraction: float) -> Callable[[float, float], float]:
    """A jitter pinned to a fraction of its window (0 = no wait, 1 = the whole window)."""
    return lambda low, high: low + (high - low) * fraction


def test_transient_errors_are_retried_until_success() -> None:
    sleeps: list[float] = []
    call = Flaky(unavailable(), errors.ConnectFailed("x", reason="connect_error"))
    assert make(sleeps)(call) == "ok"
    assert call.calls == 3
    assert len(sleeps) == 2


def test_attempts_bound_the_calls_and_the_last_error_is_reraised() -> None:
    sleeps: list[float] = []
    failures = [unavailable() for _ in range(5)]
    call = Flaky(*failures)
    with pytest.raises(errors.ServiceUnavailable) as raised:
        make(sleeps, attempts=3)(call)
    assert raised.value is failures[2]  # the last one, not tenacity.RetryError
    assert call.calls == 3
    assert len(sleeps) == 2


def test_one_attempt_means_no_retry() -> None:
    sleeps: list[float] = []
    call = Flaky(unavailable())
    with pytest.raises(errors.ServiceUnavailable):
        make(sleeps, attempts=1)(call)
    assert (call.calls, sleeps) == (1, [])


@pytest.mark.parametrize(
    "error",
    [
        errors.ResponseTimeout("t", reason="read_timeout"),
        errors.ConnectionDropped("d", reason="remote_protocol_error"),
        errors.AmbiguousServerError("500", reason="http_500", status_code=500),
        errors.MalformedResponse("m", reason="malformed_response"),
        errors.InvalidRequest("400", reason="http_400"),
        errors.InvalidNumber("n", reason="ESME_RINVDSTADR"),
        errors.NotFound("404", reason="http_404"),
        errors.Rejected("r", reason="ESME_RX_R_APPN"),
        errors.AuthenticationFailed("401", reason="http_401"),
        errors.BalanceExhausted("402", reason="http_402", retry_after_s=1.0),
        ValueError("a bug is not retried either"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_ambiguous_permanent_and_pause_are_never_retried(error: BaseException) -> None:
    sleeps: list[float] = []
    call = Flaky(error)
    with pytest.raises(type(error)) as raised:
        make(sleeps)(call)
    assert raised.value is error
    assert (call.calls, sleeps) == (1, [])


def test_full_jitter_window_doubles_up_to_the_maximum() -> None:
    sleeps: list[float] = []
    with pytest.raises(errors.ServiceUnavailable):
        make(sleeps, attempts=6, initial_ms=200, max_ms=1000, jitter=at(1.0))(
            Flaky(*[unavailable()] * 6)
        )
    assert sleeps == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])


def test_full_jitter_can_wait_nothing() -> None:
    sleeps: list[float] = []
    make(sleeps, jitter=at(0.0))(Flaky(unavailable(), unavailable()))
    assert sleeps == [0.0, 0.0]


def test_jitter_stays_within_its_window_and_varies() -> None:
    sleeps: list[float] = []
    retrying = make(sleeps, attempts=3, initial_ms=100, max_ms=150, jitter=random.Random(3).uniform)
    for _ in range(200):
        retrying(Flaky(unavailable(), unavailable()))
    firsts, seconds = sleeps[0::2], sleeps[1::2]
    assert all(0.0 <= s <= 0.1 for s in firsts)
    assert all(0.0 <= s <= 0.15 for s in seconds)  # 0.2 capped at max_backoff
    assert max(seconds) > 0.1  # the window really widened
    assert len(set(sleeps)) > 100  # random, not a fixed schedule


def test_retry_after_wins_when_longer() -> None:
    sleeps: list[float] = []
    assert make(sleeps, jitter=at(0.0))(Flaky(busy(retry_after_s=0.9))) == "ok"
    assert sleeps == [0.9]


def test_backoff_wins_when_longer_than_retry_after() -> None:
    sleeps: list[float] = []
    make(sleeps, initial_ms=500, jitter=at(1.0))(Flaky(busy(retry_after_s=0.1)))
    assert sleeps == [pytest.approx(0.5)]


def test_retry_after_beyond_max_backoff_is_left_to_the_durable_layer() -> None:
    sleeps: list[float] = []
    error = busy(retry_after_s=30.0)
    call = Flaky(error)
    with pytest.raises(errors.RateLimited) as raised:
        make(sleeps, max_ms=5000)(call)
    assert raised.value is error
    assert raised.value.retry_after_s == 30.0
    assert (call.calls, sleeps) == (1, [])


def test_on_retry_reports_each_retry_but_not_the_give_up() -> None:
    sleeps: list[float] = []
    seen: list[tuple[str, int, float]] = []
    failures = [unavailable(), busy(retry_after_s=0.7), unavailable()]
    with pytest.raises(errors.ServiceUnavailable):
        make(sleeps, attempts=3, on_retry=lambda e, n, s: seen.append((e.reason, n, s)))(
            Flaky(*failures)
        )
    assert [(reason, n) for reason, n, _ in seen] == [("http_503", 1), ("http_429", 2)]
    assert [s for _, _, s in seen] == sleeps
    assert sleeps[1] >= 0.7


def test_works_as_an_attempt_iterator_too() -> None:
    sleeps: list[float] = []
    call = Flaky(unavailable())
    for attempt in make(sleeps):
        with attempt:
            result = call()
    assert result == "ok"
    assert call.calls == 2
