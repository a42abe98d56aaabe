"""The in-process retry layer: quick tenacity retries of transient Connectus errors.

Only what the outcome policy marks ``retry_now`` is retried here (nothing was sent,
nothing charged); the last error itself is re-raised, never tenacity's ``RetryError``.
A wait longer than ``max_backoff_ms`` (a long Retry-After) is never slept in process:
the error is re-raised, ``retry_after_s`` intact, for the durable retry to wait instead.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import tenacity

from connectus_worker.worker.connectus.errors import ConnectusError
from connectus_worker.worker.policy import decide

# on_retry(error, attempt that failed (1-based), seconds about to be slept)
OnRetry = Callable[[BaseException, int, float], None]


def build_retrying(
    *,
    attempts: int,
    initial_backoff_ms: int,
    max_backoff_ms: int,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[float, float], float] = random.uniform,
    on_retry: OnRetry | None = None,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` for one Connectus call: ``retrying(fn, *args)``.

    ``attempts`` counts the first call (1 = no retry); the settings check the bounds
    (``RETRY_*``). Attempt *n* waits
    ``jitter(0, min(max_backoff, initial_backoff * 2**(n-1)))`` (full jitter; a
    ``random.Random(seed).uniform`` makes it repeatable), or the error's Retry-After
    when longer. Backoffs are in ms; ``sleep`` takes seconds. ``on_retry(error,
    attempt, delay_s)`` runs before each sleep, not when giving up.
    """
    initial_s, max_s = initial_backoff_ms / 1000, max_backoff_ms / 1000

    def wait(state: tenacity.RetryCallState) -> float:
        backoff = jitter(0.0, min(max_s, initial_s * 2 ** (state.attempt_number - 1)))
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ConnectusError) and error.retry_after_s is not None:
            return max(backoff, error.retry_after_s)
        return backoff

    def stop(state: tenacity.RetryCallState) -> bool:
        # tenacity computes the wait before it asks whether to stop.
        return state.attempt_number >= attempts or state.upcoming_sleep > max_s

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if on_retry is not None and error is not None:
            on_retry(error, state.attempt_number, state.upcoming_sleep)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda error: decide(error).retry_now),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
