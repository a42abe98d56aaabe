"""Recording a send's outcome in the ledger: sent is the pipeline's; the rest is here.

The error *type* alone decides (the table is in :mod:`worker.pipeline`):
ambiguous -> ``unknown`` (reconciled, never resent blindly), permanent -> the
dead-letter set with the reason, transient or account -> a durable retry after
a backoff, unless retries or ``MAX_MESSAGE_AGE_S`` are spent. Every write is
fenced and waits out Redis outages (:class:`worker.ledger.DurableLedger`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from dramatiq import Message

from core.job_messages import new_message
from core.jobs import JobStore
from core.models import Kind
from worker.connectus.errors import (
    AccountError,
    AmbiguousError,
    ConnectusError,
    PermanentError,
    TransientError,
)
from worker.ledger import DurableLedger
from worker.metrics import WorkerMetrics

# The pipeline's logger: these are its events (send.dead_lettered, ...), and
# dashboards and alerts select them by logger name.
log = structlog.get_logger("worker.pipeline")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Durable (cross-process) retry bounds. Units: ms and s as named."""

    max_retries: int
    min_backoff_ms: int
    max_backoff_ms: int
    max_message_age_s: int
    otp_max_age_s: int = 300  # OTP_MAX_AGE_S; the rule is core.expiry's

    def retries_for(self, exc: ConnectusError) -> int:
        """Durable retries allowed for ``exc``: ``max_retries``, or fewer where its class
        says so (a refusal that is only often temporary, e.g. ``SubmitRefused``)."""
        budget = exc.max_durable_retries
        return self.max_retries if budget is None else min(budget, self.max_retries)

    def backoff_ms(self, attempt: int, rng: random.Random) -> int:
        """Exponential backoff with full jitter for the given attempt (1-based)."""
        ceiling = min(self.max_backoff_ms, self.min_backoff_ms * 2 ** max(0, attempt - 1))
        return self.min_backoff_ms // 2 + int(rng.random() * (ceiling - self.min_backoff_ms // 2))


class Outcomes:
    """The ledger writes of every outcome but ``sent``. Thread-safe (no mutable state)."""

    def __init__(
        self,
        *,
        store: JobStore,
        ledger: DurableLedger,
        policy: RetryPolicy,
        clock: Callable[[], int],
        rng: random.Random,
        metrics: WorkerMetrics | None,
    ) -> None:
        self.store, self.ledger, self.policy = store, ledger, policy
        self.clock, self.rng, self.metrics = clock, rng, metrics

    def failed(
        self, kind: Kind, job: Mapping[str, Any], fence: int, attempts: int, exc: ConnectusError
    ) -> str:
        """Record a failed send by its error's class (the table in :mod:`worker.pipeline`)."""
        job_id = str(job["job_id"])
        if isinstance(exc, AmbiguousError):
            log.warning("send.ambiguous", reason=exc.reason, error=type(exc).__name__)
            if self.metrics is not None:
                self.metrics.ambiguous_outcome(kind, type(exc).__name__)
            fields = error_fields("unknown", exc.outcome, exc)
            self.ledger.finish(
                self.store.mark_unknown, job_id, fence, "unknown", kept_message(kind, job), fields
            )
            return "unknown"
        if isinstance(exc, PermanentError):
            return self.dead_letter(kind, job, fence, type(exc).__name__, exc.message)
        if isinstance(exc, TransientError | AccountError):
            if isinstance(exc, TransientError) and attempts > self.policy.retries_for(exc):
                reason = f"retries exhausted after {attempts} attempts: {exc.message}"
                return self.dead_letter(kind, job, fence, type(exc).__name__, reason)
            delay = max(
                self.policy.backoff_ms(attempts, self.rng), int((exc.retry_after_s or 0) * 1000)
            )
            due = self.clock() + delay
            fields = {**error_fields("retrying", exc.outcome, exc), "next_attempt_at": due}
            message = new_message(str(job["queue"]), kind.actor_name, job)
            self.ledger.finish(
                self.store.retry_later, job_id, fence, "retrying", message, due, fields
            )
            log.warning("send.retry_scheduled", reason=exc.reason, delay_ms=delay)
            return "retrying"
        raise AssertionError(f"unclassified Connectus error {exc!r}")  # pragma: no cover

    def defer(self, kind: Kind, job: Mapping[str, Any], delay_ms: int, why: str) -> str:
        """Put the message back for later, untouched: no attempt, no retry budget spent."""
        message = new_message(str(job["queue"]), kind.actor_name, job)
        self.ledger.call(
            self.store.defer, str(job["job_id"]), message, self.clock() + max(delay_ms, 50)
        )
        # Waiting for a token is routine under load (three workers once wrote 47,000
        # of these lines in seven minutes): connectus_worker_deferrals_total counts
        # it (the actor reports this answer); the line is for debugging only.
        emit = log.debug if why == "RateLimitTimeout" else log.info
        emit("send.deferred", why=why, delay_ms=delay_ms)
        return f"deferred:{why}"

    def quarantine(
        self, kind: Kind, args: tuple[Any, ...], kwargs: Mapping[str, Any], problem: str
    ) -> str:
        """Dead-letter a message that is not a valid job, with the reason."""
        kept: Any = {"args": args, "kwargs": kwargs}
        if kind.is_otp:
            # It may hold an OTP in plain text: keep only its shape.
            kept = {"args": len(args), "kwargs": sorted(kwargs)}
        data = json.dumps({"actor": kind.actor_name, **kept}, default=repr)
        member = self.store.quarantine(data.encode(), f"malformed job: {problem}")
        log.error("job.malformed", member=member, reason=problem)
        return member

    def dead_letter(
        self, kind: Kind, job: Mapping[str, Any], fence: int, error_class: str, reason: str
    ) -> str:
        message = kept_message(kind, job)
        fields = {
            "state": "failed",
            "outcome": "permanent",
            "error_class": error_class,
            "last_error": reason[:500],
        }
        self.ledger.finish(
            self.store.dead_letter, str(job["job_id"]), fence, "failed", message, fields
        )
        log.error("send.dead_lettered", error=error_class, reason=reason[:500])
        return "failed"


def kept_message(kind: Kind, job: Mapping[str, Any]) -> Message[Any]:
    """A copy of the job's message to keep in Redis (dead letters, unknown jobs).

    OTP content lives in plain text only in the queued message until it is
    sent: a kept OTP copy has no content. A dead or ambiguous OTP is not
    resent (a late code is worse than none), so nothing needs it.
    """
    kept = dict(job)
    if kind.is_otp:
        kept["payload"] = {k: v for k, v in job["payload"].items() if k != kind.content_field}
    return new_message(str(job["queue"]), kind.actor_name, kept)


def error_fields(state: str, outcome: str, exc: Exception) -> dict[str, str | int]:
    reason = getattr(exc, "reason", "") or type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    return {
        "state": state,
        "outcome": outcome,
        "error_class": type(exc).__name__,
        "last_error": f"{reason}: {message}"[:500],
    }
