"""The send pipeline: one job, from lease to recorded outcome.

Order matters and is the point of this module:

1. ``claim`` the job in the ledger (state ``sending`` with a lease and a
   fence) *before* the HTTP call, so that no two workers send one key and a
   worker that dies mid-send leaves a trace (lease expiry -> ``unknown``).
2. Send, with quick in-process retries (tenacity) for transient errors.
3. Record the outcome, fenced (``sent`` here, the rest in :mod:`worker.outcomes`).
   The error *type* alone decides:

   ====================  =====================================================
   outcome               what happens
   ====================  =====================================================
   sent                  ``sent`` with the provider id; accepted without one
                         (the documented SMS answer): ``sent``, the id
                         looked up later (:mod:`worker.id_lookup`)
   retry (transient)     durable retry: ``retrying``, re-enqueued after a
                         backoff (s to min) by the scheduler; after
                         ``DURABLE_MAX_RETRIES``: dead letter
   expired               past its expiry (:mod:`core.expiry`: ``expires_at``,
                         ``OTP_MAX_AGE_S`` or ``MAX_MESSAGE_AGE_S`` after it was
                         due): ``failed``, dead-lettered as ``Expired``, never sent
   ambiguous             ``unknown``: never resent blindly; reconciled
   permanent             ``failed`` + dead-letter set, with the reason
   pause (a scope)       durable retry with backoff; nothing is dead-lettered
   ====================  =====================================================
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import redis
import structlog
from dramatiq import Message

from core.claims import Claim
from core.expiry import AgeLimits, Expiry
from core.job_messages import new_message
from core.jobs import JobStore, epoch_ms
from core.models import Kind
from worker.admission import Admission
from worker.breaker import CircuitBreaker, Decision
from worker.breaker_scopes import target_for
from worker.connectus.errors import (
    ConnectusError,
    TransientError,
)
from worker.feedback import Feedback
from worker.id_lookup import NO_LISTING, PENDING, lookup_entry
from worker.ledger import DurableLedger
from worker.metrics import WorkerMetrics
from worker.outcomes import Outcomes, RetryPolicy, error_fields, kept_message
from worker.ratelimit import RateLimiter, RateLimitRefused, product_for

log = structlog.get_logger("worker.pipeline")

#: How soon a message held back by a half-open breaker looks again (ms).
HALF_OPEN_RECHECK_MS = 1000


class Sender(Protocol):
    """Sends one payload of one kind; returns the provider id (None: accepted unnamed)."""

    def __call__(self, kind: Kind, payload: Mapping[str, Any]) -> str | None: ...


class SendPipeline:
    """Drives one job through the ledger. Thread-safe: shares no mutable state."""

    def __init__(
        self,
        *,
        store: JobStore,
        send: Sender,
        policy: RetryPolicy,
        worker_id: str,
        lease_ms: int,
        clock: Callable[[], int] = epoch_ms,
        rng: random.Random | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        acquire_timeout_s: float = 5.0,
        metrics: WorkerMetrics | None = None,
        park: Callable[[str, str, Message[Any]], str] | None = None,
        content_key: bytes,
    ) -> None:
        self.store = store
        # Key of the provider-id lookup's content digests (CONTENT_HASH_KEY).
        self.content_key = content_key
        self.park = park
        self.send = send
        self.policy = policy
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.clock = clock
        self.rng = rng or random.Random()
        self.breaker = breaker
        self.limiter = limiter
        self.acquire_timeout_s = acquire_timeout_s
        self.ledger = DurableLedger(store)
        self.limits = AgeLimits(policy.max_message_age_s, policy.otp_max_age_s)
        self.metrics = metrics
        self.feedback = Feedback(breaker=breaker, limiter=limiter, metrics=metrics)
        self.outcomes = Outcomes(store=store, ledger=self.ledger, policy=policy,
                                 clock=clock, rng=self.rng, metrics=metrics)  # fmt: skip
        # Token and claim in one round trip when both live on the same Redis.
        self.admission = (
            Admission(store, limiter) if limiter is not None and limiter.client is store.client
            else None
        )  # fmt: skip
        # Claim tokens: unique per delivery, without a uuid4 per send (a
        # restarted process with the same worker id gets a new nonce).
        self._nonce = uuid.uuid4().hex
        self._deliveries = itertools.count(1)

    def handle(self, kind: Kind, job: Mapping[str, Any]) -> str:
        """Process one job message; returns what happened (for logs and tests).

        Never raises for a Connectus failure: every outcome is recorded in
        the ledger. Ledger writes wait out Redis outages (see
        :mod:`worker.ledger`) rather than raise, because an exception that
        escapes the actor gets the message acked, not redelivered.
        """
        job_id = str(job["job_id"])
        structlog.contextvars.bind_contextvars(
            job_id=job_id,
            kind=kind.value,
            queue=job.get("queue"),
            idempotency_key=job.get("key"),
            correlation_id=job.get("correlation_id"),
        )
        try:
            return self._handle(kind, job_id, job)
        finally:
            structlog.contextvars.unbind_contextvars(
                "job_id", "kind", "queue", "idempotency_key", "correlation_id", "attempt"
            )

    def _handle(self, kind: Kind, job_id: str, job: Mapping[str, Any]) -> str:
        # Breaker and rate limiter come before the claim: waiting for a token
        # holds no lease, and a deferred message keeps its retry budget. A
        # token free now is taken together with the claim (worker.admission).
        # Both fail open on a Redis error other than a lost connection (which
        # the ledger waits out, as it does for the claim): a lost token or
        # probe costs less than a lost message.
        decision = None
        if self._expired(kind, job) is not None:
            # Already too late: claim and dead-letter it without waiting for a
            # token or an open breaker (an OTP must not sit deferred past its life).
            kept = kept_message(kind, job)
            token = f"{self._nonce}:{next(self._deliveries)}"
            return self._claimed(kind, job_id, job, None, kept, token, None)
        if self.breaker is not None:
            target = target_for(kind, job["payload"])
            try:
                decision = self.breaker.allow(target)
            except redis.RedisError as exc:
                log.warning("breaker.unavailable", error=str(exc))
                decision = Decision(True, 0, "closed", "", target=target)
        if decision is not None and not decision.allowed:
            delay = decision.retry_in_ms
            if decision.state == "half_open":
                # Its answer is the time until the probe's lease ends (up to a
                # minute), but the probe usually settles within one send: look
                # again soon, or the whole queue stalls after every outage.
                delay = min(delay, HALF_OPEN_RECHECK_MS)
            return self.outcomes.defer(kind, job, delay, f"breaker_{decision.state}")
        kept = kept_message(kind, job)
        token = f"{self._nonce}:{next(self._deliveries)}"
        claim: Claim | None = None
        if self.limiter is not None:
            try:
                claim = self._take_token(kind, job_id, job, kept, token)
            except RateLimitRefused as exc:
                self.feedback.release(decision)
                return self.outcomes.defer(kind, job, exc.retry_in_ms, type(exc).__name__)
            except redis.RedisError as exc:
                log.warning("ratelimit.unavailable", error=str(exc))
        try:
            return self._claimed(kind, job_id, job, decision, kept, token, claim)
        finally:
            self.feedback.release(decision)

    def _expired(self, kind: Kind, job: Mapping[str, Any]) -> Expiry | None:
        """The job's expiry if it has passed (counted from when it was due), else None."""
        now = self.clock()
        expiry = self.limits.of_job(kind, job, now_ms=now)
        if now <= expiry.at_ms:
            return None
        campaign = job.get("campaign")
        if isinstance(campaign, str) and campaign and "expires_ms" not in job:
            # A campaign's message parked while the campaign did not run is due
            # again when it resumed: read when (rare: only on this path).
            resumed = self.ledger.call(
                self.store.client.hget, self.store.keys.campaign(campaign), "resumed_at"
            )
            if resumed:
                expiry = self.limits.of_job(kind, job, now_ms=now, resumed_ms=int(resumed))
        return expiry if now > expiry.at_ms else None

    def _take_token(
        self, kind: Kind, job_id: str, job: Mapping[str, Any], kept: Message[Any], token: str
    ) -> Claim | None:
        """Take the send's token, and claim in the same round trip when it is free now.

        Returns the claim, or None (claim next). Sleeps while a reserved token
        is earned. Raises :class:`RateLimitRefused` when there is none within
        ``acquire_timeout_s``.
        """
        assert self.limiter is not None
        product, dst = product_for(kind), _destination(job["payload"])
        claim = None
        if self.admission is None:
            got = self.limiter.acquire(product, dst=dst, timeout_s=self.acquire_timeout_s)
        else:
            admitted = self.ledger.call(
                self.admission.admit, job_id, product=product, dst=dst,
                timeout_s=self.acquire_timeout_s, worker_id=self.worker_id,
                lease_ms=self.lease_ms, token=token, message=kept,
            )  # fmt: skip
            got, claim = admitted.token, admitted.claim
            if claim is None and got.waited_ms > 0:
                self.limiter.sleep(got.waited_ms / 1000)
        if self.metrics is not None:
            self.metrics.waited(got.product, got.waited_ms)
        return claim

    def _claimed(
        self,
        kind: Kind,
        job_id: str,
        job: Mapping[str, Any],
        decision: Decision | None,
        kept: Message[Any],
        token: str,
        claim: Claim | None,
    ) -> str:
        if claim is None:
            claim = self.ledger.call(
                self.store.claim, job_id, worker_id=self.worker_id, lease_ms=self.lease_ms,
                token=token, message=kept,
            )  # fmt: skip
        if claim.status == "expired":
            # The previous holder died mid-send; keep this copy for reconciliation.
            self.ledger.call(self.store.hold_message, job_id, kept)
        elif claim.status == "paused" and self.park is not None:
            # Its campaign is paused or outside its window: hold the message
            # (with its content) until the campaign runs again.
            original = new_message(str(job["queue"]), kind.actor_name, job)
            self.ledger.call(self.park, str(job.get("campaign")), job_id, original)
        elif claim.status == "busy":
            # Another worker holds the lease, perhaps a dead one: look again
            # just after the lease ends rather than dropping the only message.
            self.ledger.call(self.store.defer, job_id, kept, int(claim.detail) + 1000)
        if claim.status != "ok":
            log.info("job.skipped", claim=claim.status, detail=claim.detail)
            return f"skipped:{claim.status}"
        structlog.contextvars.bind_contextvars(attempt=claim.attempts)

        expiry = self._expired(kind, job)
        if expiry is not None:
            # Never sent after its expiry (core.expiry): a late OTP is worse than none.
            return self.outcomes.dead_letter(kind, job, claim.fence, "Expired", expiry.reason())

        started = time.perf_counter()
        try:
            provider_id = self.send(kind, job["payload"])
        except RateLimitRefused as exc:
            # An in-process retry found no token: nothing was sent.
            error = TransientError(
                str(exc), reason="rate_limited", retry_after_s=exc.retry_in_ms / 1000
            )
            return self.outcomes.failed(kind, job, claim.fence, claim.attempts, error)
        except ConnectusError as exc:
            self.feedback.observe(kind, exc, decision)
            return self.outcomes.failed(kind, job, claim.fence, claim.attempts, exc)
        except Exception as exc:
            # A bug after the request may have gone out: treat as ambiguous.
            log.exception("send.crashed")
            if self.metrics is not None:
                self.metrics.ambiguous_outcome(kind, type(exc).__name__)
            crashed = error_fields("unknown", "ambiguous", exc)
            self.ledger.finish(
                self.store.mark_unknown, job_id, claim.fence, "unknown", kept, crashed
            )
            return "unknown"
        self.feedback.observe(kind, None, decision)
        now = self.clock()
        fields: dict[str, str | int] = {
            "state": "sent",
            "provider_id": provider_id or "",
            "outcome": "sent",
            "sent_at": now,
            "error_class": "",
            "last_error": "",
        }
        if provider_id:
            landed = self.ledger.finish(self.store.finish, job_id, claim.fence, "sent", fields)
        else:
            # Accepted without an id (the documented SMS answer): sent all the
            # same; the id is looked up afterwards (worker.id_lookup).
            entry = lookup_entry(kind, job["payload"], self.content_key)
            fields["provider_id_lookup"] = PENDING if entry is not None else NO_LISTING
            if entry is None:
                landed = self.ledger.finish(self.store.finish, job_id, claim.fence, "sent", fields)
            else:
                landed = self.ledger.finish(
                    self.store.finish_without_id, job_id, claim.fence, "sent", entry, fields
                )
        if not landed:
            log.warning("job.fenced_out", provider_id=provider_id)
            return "fenced"
        log.info(
            "send.sent",
            provider_id=provider_id,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return "sent"

    def quarantine(
        self, kind: Kind, args: tuple[Any, ...], kwargs: Mapping[str, Any], problem: str
    ) -> str:
        """Dead-letter a message that is not a valid job, with the reason."""
        return self.outcomes.quarantine(kind, args, kwargs, problem)


def _destination(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("dst_number") or payload.get("dst_email") or payload.get("number")
    return str(value) if value else None
