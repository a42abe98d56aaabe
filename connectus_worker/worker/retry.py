"""The in-process retry layer: quick tenacity retries of transient Connectus errors.

What is retried here is the outcome policy's (:func:`worker.policy.decide`,
``retry_now``): transient errors only (nothing was sent, nothing charged).
Ambiguous, permanent and account errors are re-raised at once: resending a
maybe-sent message is the reconciler's decision, and the others cannot
improve by retrying. After the last attempt the last error itself is
re-raised (``reraise=True``), never tenacity's ``RetryError``, so callers
see the error tree only.

Waits use full jitter (``wait_random_exponential``): attempt *n* waits a
uniform random time in ``[0, min(max_backoff, initial_backoff * 2**(n-1))]``.
When the error carries ``retry_after_s`` (HTTP 429/503 Retry-After) and it
is longer, it wins. A wait longer than ``max_backoff_ms`` is never slept
in-process: the error is re-raised, ``retry_after_s`` intact, so the
durable layer (a delayed re-enqueue) waits instead of pinning a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from connectus_worker.worker.connectus.errors import ConnectusError
from connectus_worker.worker.policy import decide

# on_retry(error, attempt that failed (1-based), seconds about to be slept)
OnRetry = Callable[[BaseException, int, float], None]


def retried(error: BaseException) -> bool:
    """Whether the in-process layer tries again after ``error`` (the policy's ``retry_now``)."""
    return decide(error).retry_now


class _FullJitterOrRetryAfter(wait_base):
    """Full-jitter exponential backoff (s), or the error's Retry-After when longer."""

    def __init__(self, *, initial_s: float, max_s: float) -> None:
        self._jitter = tenacity.wait_random_exponential(multiplier=initial_s, max=max_s)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        backoff = float(self._jitter(retry_state))
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, ConnectusError) and error.retry_after_s is not None:
            return max(backoff, error.retry_after_s)
        return backoff


class _StopWhenWaitExceeds(stop_base):
    """Stop rather than sleep longer than ``max_s`` (tenacity computes the wait first)."""

    def __init__(self, max_s: float) -> None:
        self._max_s = max_s

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return retry_state.upcoming_sleep > self._max_s


def build_retrying(
    *,
    attempts: int,
    initial_backoff_ms: int,
    max_backoff_ms: int,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: OnRetry | None = None,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` for one Connectus call: ``retrying(fn, *args)``.

    ``attempts`` counts the first call (1 = no retry). Backoffs are in
    milliseconds (ms); ``sleep`` takes seconds (s) and is injected so tests
    never sleep. ``on_retry(error, attempt, delay_s)`` runs before each sleep
    (logging, metrics); it is not called when giving up.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if not 0 < initial_backoff_ms <= max_backoff_ms:
        raise ValueError("need 0 < initial_backoff_ms <= max_backoff_ms")
    max_s = max_backoff_ms / 1000

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        if on_retry is None or retry_state.outcome is None:
            return
        error = retry_state.outcome.exception()
        if error is not None:
            on_retry(error, retry_state.attempt_number, retry_state.upcoming_sleep)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(retried),
        wait=_FullJitterOrRetryAfter(initial_s=initial_backoff_ms / 1000, max_s=max_s),
        stop=tenacity.stop_after_attempt(attempts) | _StopWhenWaitExceeds(max_s),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
