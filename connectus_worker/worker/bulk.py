"""One campaign chunk through v1 ``send_sms_bulk``: up to 1,000 recipients per call.

Idempotency holds per recipient, as for single sends: every recipient has
its own job record, made by the chunk's first claim (``ledger/lua/claim_bulk.lua``: record,
lease, fence, in one script) *before* the call, and the chunk's jobs are
finished together, fenced, after it. A redelivered chunk message finds its
sent recipients ``done`` and sends only the rest.

Outcomes, by the one outcome policy (:func:`worker.policy.decide`, as single sends):

A chunk whose messages don't fit one query string (v1 takes its parameters
there, :data:`worker.connectus.v1.MAX_QUERY_BYTES`) is sent as several calls in
turn; a failed call settles its own recipients as below and gives the later
calls' recipients back (``retrying``, the chunk comes back in a second).

================================  =============================================
the bulk call                     each claimed recipient
================================  =============================================
answered                          per item: ``sent`` with its ``id_sms``, or the
                                  item's error: permanent -> dead letter;
                                  transient -> durable retry as a single v3 send;
                                  neither id nor error -> ``unknown`` (reconciled)
ambiguous (timeout after sending) ``unknown``, with a v3 message kept for the
                                  reconciler: never resent blindly
transient / account (not sent)    ``retrying``; the chunk message comes back
                                  after a backoff (dead letter after
                                  ``DURABLE_MAX_RETRIES``)
permanent (request refused)       dead letter, replayable one by one
================================  =============================================
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from dramatiq import Message

import connectus_worker.tracing as tracing
from connectus_worker.campaign.model import Campaign
from connectus_worker.campaign.render import masked, payload_for, template_of
from connectus_worker.campaign.store import CampaignStore, job_id_for
from connectus_worker.domain.validation import sms_segments
from connectus_worker.ledger.job_messages import renew_message
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.ledger.jobs_batch import BatchLedger, BulkChunk, Finish
from connectus_worker.worker.breaker import CircuitBreaker, Decision
from connectus_worker.worker.breaker_scopes import V1_BULK
from connectus_worker.worker.campaign_messages import chunk_message, single_message
from connectus_worker.worker.connectus.answers import BulkResult
from connectus_worker.worker.connectus.classify import PLATFORM, SMPP, is_balance_text
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import (
    BalanceExhausted,
    ConnectusError,
    MalformedResponse,
    PermanentError,
    Rejected,
)
from connectus_worker.worker.ledger import DurableLedger, error_fields
from connectus_worker.worker.policy import RetryPolicy, decide, unsent_error
from connectus_worker.worker.ratelimit import RateLimiter, RateLimitRefused

log = structlog.get_logger("connectus_worker.worker.bulk")


def item_error(text: str) -> ConnectusError:
    """The error class of one bulk item's error text, from the status tables."""
    for word in text.replace(",", " ").replace(":", " ").split():
        rule = SMPP.get(word) or PLATFORM.get(word)
        if rule is not None:
            error = rule.error or Rejected
            return error(f"bulk item refused: {text}", reason=word)
    if is_balance_text(text):
        return BalanceExhausted(f"bulk item refused: {text}", reason="balance")
    # Not in the tables: not accepted, and unknown why; a human decides (replay).
    return Rejected(f"bulk item refused: {text}", reason="bulk_item_error")


class BulkSender:
    """Sends one stored chunk; thread-safe (no mutable state)."""

    def __init__(
        self,
        *,
        campaigns: CampaignStore,
        jobs: JobStore,
        client: ConnectusClient,
        policy: RetryPolicy,
        queue: str,
        worker_id: str,
        lease_ms: int,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        acquire_timeout_s: float = 5.0,
        clock: Callable[[], int] = epoch_ms,
        rng: random.Random | None = None,
    ) -> None:
        self.campaigns = campaigns
        self.jobs = jobs
        self.batch = BatchLedger(jobs)
        self.ledger = DurableLedger(jobs)
        self.client = client
        self.policy = policy
        self.queue = queue
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.breaker = breaker
        self.limiter = limiter
        self.acquire_timeout_s = acquire_timeout_s
        self.clock = clock
        self.rng = rng or random.Random()

    def handle(self, campaign_id: str, number: int) -> str:
        """Send chunk ``number`` of ``campaign_id``; returns what happened (logs, tests).

        One ``consumer`` span per attempt (a trace of its own: the pump, not a
        producer, queued the chunk) with the campaign, the chunk's number, the
        attempt and the outcome: never a number or a text (README, Tracing)."""
        attributes: dict[str, str | int] = {"campaign_id": campaign_id, "chunk": number,
                                            "queue": self.queue}  # fmt: skip
        with tracing.span("send sms bulk chunk", "consumer", attributes):
            outcome = self._attempt(campaign_id, number)
            tracing.annotate(outcome=outcome)
        return outcome

    def _attempt(self, campaign_id: str, number: int) -> str:
        message = chunk_message(self.queue, campaign_id, number)
        campaign = self.ledger.call(self.campaigns.get, campaign_id)
        if campaign is None:
            log.warning("bulk.campaign_missing", campaign=campaign_id, chunk=number)
            return "missing"
        if self.breaker is None:
            return self._handle(campaign, message, number, None)
        decision = self.breaker.allow(V1_BULK)
        if not decision.allowed:
            return self._defer(message, campaign_id, number, max(decision.retry_in_ms, 1000))
        try:
            return self._handle(campaign, message, number, decision)
        finally:
            # A half-open probe that ended without an outcome (no token, parked,
            # skipped) gives its slots back at once rather than at its lease's end.
            self.breaker.release(decision)

    def _handle(
        self, campaign: Campaign, message: Message[Any], number: int, decision: Decision | None
    ) -> str:
        campaign_id = campaign.campaign_id
        member = f"chunk:{number}"
        # One token of the SMS bucket per HTTP call: Connectus throttles requests
        # (429, ESME_RTHROTTLED), and the adaptive rate follows what it says. The
        # first call's is taken before the claim: no token, nothing is claimed.
        try:
            self._admit()
        except RateLimitRefused as exc:
            return self._defer(message, campaign_id, number, exc.retry_in_ms)
        rows = self.ledger.call(self.campaigns.chunk, campaign_id, number)
        base = number * campaign.chunk_size
        ids = [job_id_for(campaign_id, base + i) for i in range(len(rows))]
        # Only what send_sms_bulk takes; a full payload (payload_for) is made for
        # the few recipients that go on as single sends (errors, unknown).
        render = template_of(campaign).render_row
        texts = [render(row) for row in rows]
        # The records are made by the first claim: each keeps the masked number
        # and its segments, as a single send's record does.
        made = [(row[0], masked(campaign, row[0]), sms_segments(text))
                for row, text in zip(rows, texts, strict=True)]  # fmt: skip
        chunk = BulkChunk(campaign_id, number, base, campaign.kind.value, self.queue,
                          self.campaigns.ttl_s)  # fmt: skip
        claims = self.ledger.call(
            self.batch.claim_bulk, chunk, made, worker_id=self.worker_id, lease_ms=self.lease_ms,
            token=uuid.uuid4().hex, recipient_key=self.campaigns.recipient_key,
        )  # fmt: skip
        if any(c.status == "paused" for c in claims):
            where = self.ledger.call(self.campaigns.park, campaign_id, member, message)
            log.info("bulk.parked", campaign=campaign_id, chunk=number, answer=where)
            return f"parked:{where}"
        for i, claim in enumerate(claims):
            if claim.status in ("expired", "unknown"):
                # A worker died mid-bulk: the job is now unknown; keep its message.
                single = self._single(campaign, ids[i], payload_for(campaign, rows[i])[0])
                self.ledger.call(self.jobs.hold_message, ids[i], single)
        busy = [int(c.detail) for c in claims if c.status == "busy"]
        if busy:
            self._defer(message, campaign_id, number, max(busy) + 1000 - self.clock())
        sending = [(i, c) for i, c in enumerate(claims) if c.status == "ok"]
        if not sending:
            return "skipped"
        tracing.annotate(attempt=max(c.attempts for _, c in sending))
        name = f"{campaign.name} #{number}"[:100]
        now_local = datetime.now(UTC).astimezone(campaign.zone).strftime("%Y-%m-%d %H:%M:%S")
        messages = [{"dst_number": rows[i][0], "sms_content": texts[i]} for i, _ in sending]
        # v1 takes its parameters in the query string: a chunk whose messages
        # don't fit one URL goes as several calls, one after another.
        groups = self.client.v1.bulk_groups(messages, delivery_name=name, deliver_at=now_local)
        sent, deliveries = 0, list[str]()
        for call, (start, end) in enumerate(groups):
            part = sending[start:end]
            try:
                if call:
                    self._admit()
            except RateLimitRefused as refused:
                # This call and the later ones wait for a token with the chunk.
                self._keep_deliveries(campaign_id, number, deliveries)
                self._release([(ids[i], c.fence) for i, c in sending[start:]], message,
                              campaign_id, number, unsent_error(refused))  # fmt: skip
                return f"sent:{sent}+deferred"
            try:
                result = self.client.v1.send_sms_bulk(
                    messages=messages[start:end], delivery_name=name, deliver_at=now_local
                )
            except ConnectusError as exc:
                tracing.annotate(error=type(exc).__name__, reason=exc.reason)
                if self.breaker is not None:
                    self.breaker.record_failure(exc, decision)
                if self.limiter is not None and decide(exc).throttled:
                    self.limiter.on_throttled("sms", exc.retry_after_s)
                self._keep_deliveries(campaign_id, number, deliveries)
                if end < len(sending):
                    # The later groups were never sent: they come back with the chunk.
                    self._release([(ids[i], c.fence) for i, c in sending[end:]], message,
                                  campaign_id, number, exc, delay_ms=1000)  # fmt: skip
                answer = self._failed_call(campaign, message, number, ids, rows, part, exc)
                return f"sent:{sent}+{answer}" if sent else answer
            if self.breaker is not None:
                self.breaker.record_success(decision)
            if self.limiter is not None:
                self.limiter.on_success("sms")
            if result.id_delivery:
                deliveries.append(result.id_delivery)
            sent += self._record(campaign, ids, rows, part, result, number)
        self._keep_deliveries(campaign_id, number, deliveries)
        return f"sent:{sent}"

    def _record(
        self, campaign: Campaign, ids: list[str], rows: list[list[str]],
        part: list[tuple[int, Any]], result: BulkResult, number: int,
    ) -> int:  # fmt: skip
        """Finish the recipients of one answered call; returns how many were sent."""
        now = self.clock()
        finishes = []
        sent_items = []
        for (i, claim), item in zip(part, result.items, strict=True):
            if item.ok:
                sent_items.append((ids[i], claim.fence, str(item.provider_id)))
            else:
                # Neither an id nor an error: perhaps accepted. Ambiguous (reconciled),
                # never a dead letter, whose replay could charge it again.
                error = (
                    item_error(item.error)
                    if item.error
                    else MalformedResponse("bulk item with neither id_sms nor error",
                                           reason="bulk_item_without_id")
                )  # fmt: skip
                payload = payload_for(campaign, rows[i])[0]
                finishes.append(
                    self._outcome(campaign, ids[i], payload, claim.fence, claim.attempts, error)
                )
        if sent_items:
            shared: dict[str, str | int] = {"state": "sent", "outcome": "sent", "sent_at": now,
                                            "error_class": "", "last_error": ""}  # fmt: skip
            self.ledger.call(self.batch.finish_sent_many, sent_items, shared)
        if finishes:
            self.ledger.call(self.batch.finish_many, finishes)
        log.info("bulk.sent", campaign=campaign.campaign_id, chunk=number, sent=len(sent_items),
                 refused=len(finishes), id_delivery=result.id_delivery)  # fmt: skip
        return len(sent_items)

    def _keep_deliveries(self, campaign_id: str, number: int, deliveries: list[str]) -> None:
        """The chunk's deliveries (one a call), comma-separated, for status polling."""
        if deliveries:
            self.ledger.call(self.campaigns.set_delivery, campaign_id, number, ",".join(deliveries))

    def _release(
        self, unsent: list[tuple[str, int]], message: Message[Any], campaign_id: str,
        number: int, exc: ConnectusError, delay_ms: int | None = None,
    ) -> None:  # fmt: skip
        """Give back claimed recipients (job id, fence) that were never sent; the chunk
        message comes back after ``delay_ms`` (default: the error's retry-after) and
        sends them."""
        if delay_ms is None:
            delay_ms = int(1000 if exc.retry_after_s is None else exc.retry_after_s * 1000)
        fields = {**_error_fields("retrying", exc), "next_attempt_at": self.clock() + delay_ms}
        held = [Finish(job_id, fence, "done", fields) for job_id, fence in unsent]
        self.ledger.call(self.batch.finish_many, held)
        self._defer(message, campaign_id, number, delay_ms)

    def _admit(self) -> None:
        """Take one SMS token for one HTTP call; raises :class:`RateLimitRefused`."""
        if self.limiter is not None:
            self.limiter.acquire("sms", timeout_s=self.acquire_timeout_s)

    def _failed_call(
        self, campaign: Campaign, message: Message[Any], number: int, ids: list[str],
        rows: list[list[str]], sending: list[tuple[int, Any]], exc: ConnectusError,
    ) -> str:  # fmt: skip
        campaign_id = campaign.campaign_id
        log.warning("bulk.failed", campaign=campaign_id, chunk=number, error=type(exc).__name__,
                    reason=exc.reason)  # fmt: skip
        attempts = max(claim.attempts for _, claim in sending)
        decision = decide(exc, attempts, self.policy, self.rng)
        if decision.action == "retry":
            # Nothing was sent: the same chunk comes back after a backoff.
            delay = decision.delay_ms
            fields = {**_error_fields("retrying", exc), "next_attempt_at": self.clock() + delay}
            held = [Finish(ids[i], c.fence, "done", fields) for i, c in sending]
            self.ledger.call(self.batch.finish_many, held)
            self._defer(message, campaign_id, number, delay)
            return "retrying"
        finishes = [
            self._outcome(campaign, ids[i], payload_for(campaign, rows[i])[0], claim.fence,
                          claim.attempts, exc)
            for i, claim in sending
        ]  # fmt: skip
        self.ledger.call(self.batch.finish_many, finishes)
        return "unknown" if decision.action == "unknown" else "failed"

    def _outcome(
        self, campaign: Campaign, job_id: str, payload: Mapping[str, Any], fence: int,
        attempts: int, exc: ConnectusError,
    ) -> Finish:  # fmt: skip
        """One recipient's outcome after an error, as a single v3 send from here on."""
        single = self._single(campaign, job_id, payload)
        decision = decide(exc, attempts, self.policy, self.rng)
        if decision.action == "unknown":
            # Scored by when it became unknown, as JobStore.mark_unknown does: the
            # reconciler waits RECONCILE_AFTER_S and resends only after its window.
            fields = _error_fields("unknown", exc)
            return Finish(job_id, fence, "unknown", fields, single, self.clock())
        if decision.action == "retry":
            due = self.clock() + decision.delay_ms
            fields = {**_error_fields("retrying", exc), "next_attempt_at": due}
            return Finish(job_id, fence, "retry", fields, renew_message(single), due)
        fields = _error_fields("failed", exc)
        if not isinstance(exc, PermanentError):  # retries exhausted
            fields["last_error"] = decision.reason[:500]
        return Finish(job_id, fence, "dead", fields, single, self.clock())

    def _single(self, campaign: Campaign, job_id: str, payload: Mapping[str, Any]) -> Message[Any]:
        return single_message(campaign, job_id, payload, self.queue, self.clock())

    def _defer(self, message: Message[Any], campaign_id: str, number: int, delay_ms: int) -> str:
        member = f"chunk:{campaign_id}:{number}"
        due = self.clock() + max(delay_ms, 50)
        self.ledger.call(self.jobs.defer, member, message, due)
        return "deferred"


def _error_fields(state: str, exc: ConnectusError) -> dict[str, str | int]:
    return error_fields(state, exc.outcome, exc)
