"""The send path: one job, from lease to recorded outcome, read top to bottom in
:meth:`SendPipeline._send`: claim with a lease, send, decide, finish.

The breaker and the limiter come *before* the claim: waiting for a token holds no lease,
and a message held back keeps its retry budget (a token free now is taken with the claim
in one round trip, ``worker/lua/admit.lua``). The claim (lease + fence) comes before the
HTTP call, so no two workers send one key and a worker that dies mid-send leaves a trace
(lease expiry -> ``unknown``). The error alone decides (:func:`worker.policy.decide`);
a job past its expiry (:mod:`domain.expiry`) is dead-lettered as ``Expired``, never sent.
Ledger writes wait out a Redis outage (:class:`worker.ledger.DurableLedger`): an
exception that escapes the actor gets the message acked. The breaker and the limiter are
bookkeeping and fail open on a Redis error.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis
import structlog
from dramatiq import Message

import connectus_worker.tracing as tracing
from connectus_worker.domain.expiry import AgeLimits, Expiry
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.claims import Claim, claimed
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import Finish, JobStore, epoch_ms
from connectus_worker.luascript import load
from connectus_worker.worker import breaker as gates
from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.breaker_scopes import target_for
from connectus_worker.worker.connectus.errors import ConnectusError
from connectus_worker.worker.id_lookup import NO_LISTING, PENDING, entry_of
from connectus_worker.worker.ledger import DurableLedger, dead_fields, failure_fields, kept_message
from connectus_worker.worker.metrics import WorkerMetrics
from connectus_worker.worker.policy import RetryPolicy, decide, unsent_error
from connectus_worker.worker.ratelimit import Acquired, RateLimiter, RateLimitRefused

log = structlog.get_logger("connectus_worker.worker.pipeline")

# worker/lua/admit.lua says its KEYS, ARGV and answer; it includes the
# limiter's functions (lib_ratelimit.lua) and the claim (core's lib_claim.lua).
ADMIT = load(__package__, "admit.lua")

#: How soon a message held back by a half-open breaker looks again (ms).
HALF_OPEN_RECHECK_MS = 1000
_CONTEXT = ("job_id", "kind", "queue", "idempotency_key", "correlation_id", "attempt")


#: Sends one payload of one kind; returns the provider id (None: accepted unnamed).
Sender = Callable[[Kind, Mapping[str, Any]], str | None]


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
        self.store, self.send, self.policy, self.park = store, send, policy, park
        self.worker_id, self.lease_ms, self.clock = worker_id, lease_ms, clock
        # Key of the provider-id lookup's content digests (CONTENT_HASH_KEY).
        self.content_key = content_key
        self.rng = rng or random.Random()
        self.breaker, self.limiter, self.metrics = breaker, limiter, metrics
        self.acquire_timeout_s = acquire_timeout_s
        self.ledger = DurableLedger(store)
        self.limits = AgeLimits(policy.max_message_age_s, policy.otp_max_age_s)
        # Token and claim in one round trip when both live on the same Redis.
        same_redis = limiter is not None and limiter.client is store.client
        self._admit_script = store.client.register_script(ADMIT) if same_redis else None
        # Claim tokens: unique per delivery, without a uuid4 per send (a
        # restarted process with the same worker id gets a new nonce).
        self._nonce = uuid.uuid4().hex
        self._deliveries = itertools.count(1)

    @property
    def account(self) -> str:
        """The Connectus account this pipeline sends for (its limiter's; metrics label)."""
        gate = self.limiter or self.breaker
        return gate.account if gate is not None else "default"

    def handle(self, kind: Kind, job: Mapping[str, Any]) -> str:
        """Process one job message; returns what happened (for logs and tests).

        Never raises for a Connectus failure: every outcome is recorded.
        """
        structlog.contextvars.bind_contextvars(
            job_id=str(job["job_id"]), kind=kind.value, queue=job.get("queue"),
            idempotency_key=job.get("key"), correlation_id=job.get("correlation_id"),
        )  # fmt: skip
        try:
            return self._send(kind, str(job["job_id"]), job)
        finally:
            structlog.contextvars.unbind_contextvars(*_CONTEXT)

    def _send(self, kind: Kind, job_id: str, job: Mapping[str, Any]) -> str:
        kept, token = kept_message(kind, job), f"{self._nonce}:{next(self._deliveries)}"
        gate: gates.Decision | None = None
        claim: Claim | None = None
        # An expired job is claimed and dead-lettered at once, without waiting
        # for a token or an open breaker (an OTP must not sit deferred past its life).
        if self._expired(kind, job) is None:
            gate = self._allow(kind, job)
            if gate is not None and not gate.allowed:
                return self.defer(kind, job, _recheck_ms(gate), f"breaker_{gate.state}")
            try:
                claim = self._admit(kind, job_id, job, kept, token)
            except RateLimitRefused as exc:
                self._release(gate)
                return self.defer(kind, job, exc.retry_in_ms, type(exc).__name__)
        try:
            if claim is None:
                claim = self.ledger.call(
                    self.store.claim, job_id, worker_id=self.worker_id, lease_ms=self.lease_ms,
                    token=token, message=kept,
                )  # fmt: skip
            if claim.status != "ok":
                return self._skipped(kind, job_id, job, kept, claim)
            structlog.contextvars.bind_contextvars(attempt=claim.attempts)
            tracing.annotate(attempt=claim.attempts)
            expiry = self._expired(kind, job)
            if expiry is not None:  # never sent after its expiry: a late OTP is worse than none
                return self._dead_letter(
                    kind, job, claim.fence, dead_fields("Expired", expiry.reason())
                )
            started = time.perf_counter()
            try:
                provider_id = self.send(kind, job["payload"])
            except RateLimitRefused as exc:  # an in-process retry found no token: not sent
                return self._failed(kind, job, claim, unsent_error(exc))
            except Exception as exc:
                if isinstance(exc, ConnectusError):
                    self._tell(kind, gate, exc)
                return self._failed(kind, job, claim, exc)
            self._tell(kind, gate, None)
            return self._sent(kind, job_id, job, claim.fence, provider_id, started)
        finally:
            self._release(gate)

    # --- before the claim: breaker, token, expiry --------------------------------
    def _allow(self, kind: Kind, job: Mapping[str, Any]) -> gates.Decision | None:
        """The breaker's answer for this send (fails open on a Redis error)."""
        if self.breaker is None:
            return None
        target = target_for(kind, job["payload"])
        try:
            return self.breaker.allow(target)
        except redis.RedisError as exc:
            log.warning("breaker.unavailable", error=str(exc))
            return gates.Decision(True, 0, "closed", "", target=target)

    def _admit(
        self, kind: Kind, job_id: str, job: Mapping[str, Any], kept: Message[Any], token: str
    ) -> Claim | None:
        """Take the send's token, and claim in the same round trip when it is free now.

        Returns the claim, or None (claim next). Sleeps while a reserved token is earned
        (holding no lease). Raises :class:`RateLimitRefused` (nothing taken or claimed)
        when none comes within ``acquire_timeout_s`` or the destination is capped. A
        token taken for a refused claim is not handed back: a token is capacity, and a
        refund would let a redelivery storm borrow from the future.
        """
        if self.limiter is None:
            return None
        product, dst = kind.spec.rate_product, _destination(kind, job["payload"])
        claim = None
        try:
            if self._admit_script is None or self.store.durability.confirms:  # claim + WAIT
                got = self.limiter.acquire(product, dst=dst, timeout_s=self.acquire_timeout_s)
            else:
                got, claim = self.ledger.call(self._take_and_claim, job_id, product, dst,
                                              token, kept)  # fmt: skip
                if claim is None and got.waited_ms > 0:
                    self.limiter.sleep(got.waited_ms / 1000)
        except redis.RedisError as exc:
            log.warning("ratelimit.unavailable", error=str(exc))
            return None
        if self.metrics is not None:
            self.metrics.waited(got.product, got.waited_ms, self.account)
        return claim

    def _take_and_claim(
        self, job_id: str, product: str, dst: str | None, token: str, kept: Message[Any]
    ) -> tuple[Acquired, Claim | None]:
        """One round trip: a token, and the claim only when the token is free now."""
        assert self.limiter is not None and self._admit_script is not None
        claim_keys, claim_args = self.store.claim_call(
            job_id, worker_id=self.worker_id, lease_ms=self.lease_ms, token=token, message=kept
        )
        take_keys, take_args = self.limiter.take_call(
            product, dst=dst, timeout_s=self.acquire_timeout_s
        )
        got, claim = self._admit_script(
            keys=[*claim_keys, *take_keys], args=[*claim_args, *take_args],
            client=self.store.client,
        )  # fmt: skip
        acquired = self.limiter.granted(product, got, timeout_s=self.acquire_timeout_s)
        return acquired, claimed(claim) if claim else None

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

    def _skipped(
        self, kind: Kind, job_id: str, job: Mapping[str, Any], kept: Message[Any], claim: Claim
    ) -> str:
        """A claim that did not give us the job: keep or park the message as its status says."""
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
        log.info("job.skipped", claim=claim.status, detail=claim.detail)
        return f"skipped:{claim.status}"

    # --- after the send: tell the breaker and the limiter, finish ----------------
    def _tell(self, kind: Kind, gate: gates.Decision | None, exc: ConnectusError | None) -> None:
        """Feed one send's outcome to the breaker and the adaptive rate."""
        if self.metrics is not None and exc is not None and decide(exc).throttled:
            self.metrics.throttles.labels(kind.value, self.account).inc()
        tell(self.breaker, self.limiter, kind.spec.rate_product, gate, exc)

    def _release(self, gate: gates.Decision | None) -> None:
        """Give a half-open probe's slot back if the send ended without an outcome."""
        if self.breaker is not None and gate is not None and gate.probe:
            try:
                self.breaker.release(gate)
            except redis.RedisError as error:  # the probe lease expires by itself
                log.warning("breaker.unavailable", error=str(error))

    def _sent(
        self, kind: Kind, job_id: str, job: Mapping[str, Any], fence: int,
        provider_id: str | None, started: float,
    ) -> str:  # fmt: skip
        fields: dict[str, str | int] = {"state": "sent", "provider_id": provider_id or "",
                                        "outcome": "sent", "sent_at": self.clock(),
                                        "error_class": "", "last_error": ""}  # fmt: skip
        entry = None
        if not provider_id:
            # Accepted without an id (the documented SMS answer): sent all the same;
            # the id is looked up afterwards (worker.id_lookup).
            entry = entry_of(kind, job["payload"], self.content_key, job.get("account"))
            fields["provider_id_lookup"] = PENDING if entry is not None else NO_LISTING
        outcome = (
            Finish(job_id, fence, "done", fields)
            if entry is None
            else Finish(job_id, fence, "lookup", fields, lookup=json.dumps(entry).encode())
        )
        if not self.ledger.finish(outcome):
            log.warning("job.fenced_out", provider_id=provider_id)
            return "fenced"
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info("send.sent", provider_id=provider_id, latency_ms=latency_ms)
        return "sent"

    def _failed(self, kind: Kind, job: Mapping[str, Any], claim: Claim, exc: Exception) -> str:
        """Record a failed send as the policy decides (:func:`worker.policy.decide`)."""
        job_id, decision = str(job["job_id"]), decide(exc, claim.attempts, self.policy, self.rng)
        tracing.annotate(error=type(exc).__name__, reason=getattr(exc, "reason", None))
        fields = failure_fields(decision, exc, self.clock())
        if decision.action == "unknown":
            if isinstance(exc, ConnectusError):
                log.warning("send.ambiguous", reason=exc.reason, error=type(exc).__name__)
            else:  # a bug after the request may have gone out: treat as ambiguous
                log.exception("send.crashed")
            if self.metrics is not None:
                self.metrics.ambiguous.labels(kind.value, type(exc).__name__).inc()
            kept = kept_message(kind, job)
            self.ledger.finish(Finish(job_id, claim.fence, "unknown", fields, kept))
            return "unknown"
        if decision.action == "fail":
            return self._dead_letter(kind, job, claim.fence, fields)
        message = new_message(str(job["queue"]), kind.actor_name, job)
        due = int(fields["next_attempt_at"])
        self.ledger.finish(Finish(job_id, claim.fence, "retry", fields, message, due))
        log.warning(
            "send.retry_scheduled", reason=getattr(exc, "reason", None), delay_ms=decision.delay_ms
        )
        return "retrying"

    def _dead_letter(
        self, kind: Kind, job: Mapping[str, Any], fence: int, fields: dict[str, str | int]
    ) -> str:
        kept = kept_message(kind, job)
        self.ledger.finish(Finish(str(job["job_id"]), fence, "dead", fields, kept))
        log.error("send.dead_lettered", error=fields["error_class"], reason=fields["last_error"])
        return "failed"

    def defer(self, kind: Kind, job: Mapping[str, Any], delay_ms: int, why: str) -> str:
        """Put the message back for later, untouched: no attempt, no retry budget spent."""
        message = new_message(str(job["queue"]), kind.actor_name, job)
        self.ledger.call(
            self.store.defer, str(job["job_id"]), message, self.clock() + max(delay_ms, 50)
        )
        # Waiting for a token is routine under load: a metric counts it, the line is for debugging.
        emit = log.debug if why == "RateLimitTimeout" else log.info
        emit("send.deferred", why=why, delay_ms=delay_ms)
        return f"deferred:{why}"


def tell(
    breaker: CircuitBreaker | None,
    limiter: RateLimiter | None,
    product: str,
    gate: gates.Decision | None,
    exc: ConnectusError | None,
) -> None:
    """A send's outcome to the breaker, and a throttle to the shared rate (a success costs
    the limiter nothing). Bookkeeping: a Redis error is logged, so the outcome is still
    recorded."""
    try:
        if breaker is not None and exc is None:
            breaker.record_success(gate)
        elif breaker is not None and exc is not None:
            breaker.record_failure(exc, gate)
        if limiter is not None and exc is not None and decide(exc).throttled:
            limiter.on_throttled(product, exc.retry_after_s)
    except redis.RedisError as error:
        log.warning("breaker_or_rate.unavailable", error=str(error))


def _recheck_ms(gate: gates.Decision) -> int:
    """When a message held back by the breaker looks again (ms): a half-open probe usually
    settles within one send, well before its lease ends."""
    if gate.state == "half_open":
        return min(gate.retry_in_ms, HALF_OPEN_RECHECK_MS)
    return gate.retry_in_ms


def _destination(kind: Kind, payload: Mapping[str, Any]) -> str | None:
    """The person a send goes to (the destination cap's key); None for a group."""
    value = payload.get(kind.spec.dst_field) if kind.spec.person else None
    return str(value) if value else None
