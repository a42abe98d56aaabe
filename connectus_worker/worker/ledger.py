"""Ledger calls that wait out a Redis outage instead of raising, and what they keep.

Without Dramatiq's Retries middleware an exception that escapes an actor gets its
message acked, so a ledger write is retried until Redis answers (the message stays
unacked meanwhile: a process stopped while waiting has it redelivered). Safe, because
every transition is idempotent or fenced: a claim carries a per-delivery token, and a
finishing write whose first try landed is fenced out on the retry, which
:meth:`JobStore.finished` tells apart from a real fence-out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import redis
import structlog
from dramatiq import Message

from connectus_worker.domain.models import Kind
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.worker.policy import Decision

log = structlog.get_logger("connectus_worker.worker.ledger")

P = ParamSpec("P")
T = TypeVar("T")

#: Errors after which the same call may be made again (BusyLoadingError, the
#: AOF still loading after a restart, is a ConnectionError).
RETRYABLE = (redis.ConnectionError, redis.TimeoutError)


class DurableLedger:
    """Wraps :class:`JobStore` calls made by the send pipeline."""

    def __init__(
        self,
        store: JobStore,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_backoff_s: float = 2.0,
    ) -> None:
        self.store = store
        self.sleep = sleep
        self.max_backoff_s = max_backoff_s

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, retried for as long as Redis is unreachable."""
        delay, waited = 0.05, 0.0
        while True:
            try:
                return fn(*args, **kwargs)
            except RETRYABLE as exc:
                if waited == 0.0 or int(waited) // 30 != int(waited + delay) // 30:
                    log.warning("ledger.redis_unavailable", call=fn.__name__, error=str(exc),
                                waited_s=round(waited, 1))  # fmt: skip
                self.sleep(delay)
                waited += delay
                delay = min(self.max_backoff_s, delay * 2)

    def finish(self, outcome: Finish) -> bool:
        """:meth:`JobStore.finish`, retried; True if it landed (on any try)."""
        tries, state = 0, str(outcome.fields["state"])

        def attempt() -> bool:
            nonlocal tries
            tries += 1
            # After a failed try, a fence-out may mean that try had landed.
            return self.store.finish(outcome) or (
                tries > 1 and self.store.finished(outcome.job_id, outcome.fence, state)
            )

        return self.call(attempt)


def kept_message(kind: Kind, job: Mapping[str, Any]) -> Message[Any]:
    """A copy of the job's message to keep in Redis (dead letters, unknown jobs).

    OTP content lives in plain text only in the queued message until it is
    sent: a kept OTP copy has no content. A dead or ambiguous OTP is not
    resent (a late code is worse than none), so nothing needs it.
    """
    kept = dict(job)
    if kind.spec.otp:
        kept["payload"] = {k: v for k, v in job["payload"].items() if k != kind.spec.content_field}
    return new_message(str(job["queue"]), kind.actor_name, kept)


def error_fields(state: str, outcome: str, exc: BaseException) -> dict[str, str | int]:
    """The job record's fields after an error: state, outcome, class and ``reason: message``."""
    reason = getattr(exc, "reason", "") or type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    return {
        "state": state,
        "outcome": outcome,
        "error_class": type(exc).__name__,
        "last_error": f"{reason}: {message}"[:500],
    }


def dead_fields(error_class: str, reason: str) -> dict[str, str | int]:
    """The job record's fields when it is dead-lettered."""
    return {"state": "failed", "outcome": "permanent", "error_class": error_class,
            "last_error": reason[:500]}  # fmt: skip


def failure_fields(decision: Decision, exc: BaseException, now_ms: int) -> dict[str, str | int]:
    """The job record's fields after a failed send, as ``decision`` says; the same for
    a single send and a bulk recipient. A retry's is due at ``next_attempt_at`` (epoch ms)."""
    if decision.action == "fail":
        return dead_fields(type(exc).__name__, decision.reason)
    if decision.action == "unknown":
        return error_fields("unknown", "ambiguous", exc)
    due = now_ms + decision.delay_ms
    return {
        **error_fields("retrying", getattr(exc, "outcome", "retry"), exc),
        "next_attempt_at": due,
    }


def quarantine(
    store: JobStore, actor: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], problem: str,
    *, shape_only: bool = False,
) -> str:  # fmt: skip
    """Dead-letter a message that is not a valid job of ``actor``, with the reason;
    ``shape_only``: keep only its shape (it may hold an OTP in plain text)."""
    kept: Any = {"args": args, "kwargs": kwargs}
    if shape_only:
        kept = {"args": len(args), "kwargs": sorted(kwargs)}
    data = json.dumps({"actor": actor, **kept}, default=repr)
    member = store.quarantine(data.encode(), f"malformed job: {problem}")
    log.error("job.malformed", member=member, reason=problem)
    return member
