"""One campaign chunk through v1 ``send_sms_bulk``: up to 1,000 recipients per call.

Idempotency holds per recipient, as for single sends: the chunk's first claim
(``ledger/lua/claim_bulk.lua``) makes each recipient's job record, lease and fence
*before* the call, and the jobs are finished together, fenced, after it; a redelivered
chunk sends only the recipients not yet ``done``. A chunk too long for one query string
(:data:`worker.connectus.v1.MAX_QUERY_BYTES`) goes as several calls in turn; a failed
call settles its own recipients and gives the later calls' back (the chunk comes again).
Outcomes, by the one policy (:func:`worker.policy.decide`):

================================  =============================================
the bulk call                     each claimed recipient
================================  =============================================
answered                          per item: ``sent`` with its ``id_sms``, or the
                                  item's error as a single v3 send's (dead
                                  letter, durable retry); neither id nor error:
                                  ``unknown`` (reconciled)
ambiguous (timeout after sending) ``unknown``, never resent blindly
transient / account (not sent)    ``retrying``: the chunk comes back after a
                                  backoff (dead letter after the budget)
permanent (request refused)       dead letter, replayable one by one
================================  =============================================
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from dramatiq import Message

import connectus_worker.tracing as tracing
from connectus_worker.campaign.model import Campaign
from connectus_worker.campaign.render import masked, payload_for, template_of
from connectus_worker.campaign.store import CampaignStore, job_id_for
from connectus_worker.domain.validation import sms_segments
from connectus_worker.ledger.claims import Claim
from connectus_worker.ledger.jobs import Finish, FinishMode, JobStore, epoch_ms
from connectus_worker.ledger.jobs_batch import BatchLedger, BulkChunk
from connectus_worker.worker.breaker import CircuitBreaker, Decision
from connectus_worker.worker.breaker_scopes import V1_BULK
from connectus_worker.worker.campaign_messages import chunk_message, single_message
from connectus_worker.worker.connectus.answers import BulkResult
from connectus_worker.worker.connectus.classify import for_bulk_item
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import (
    ConnectusError,
    MalformedResponse,
)
from connectus_worker.worker.ledger import DurableLedger, error_fields, failure_fields
from connectus_worker.worker.pipeline import tell
from connectus_worker.worker.policy import RetryPolicy, decide, unsent_error
from connectus_worker.worker.ratelimit import RateLimiter, RateLimitRefused

log = structlog.get_logger("connectus_worker.worker.bulk")


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One delivery of a chunk: its campaign, number and message, and its recipients'
    job ids and rows (the number first)."""

    campaign: Campaign
    number: int
    message: Message[Any]
    ids: list[str]
    rows: list[list[str]]


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
        self.campaigns, self.jobs, self.client, self.policy = campaigns, jobs, client, policy
        self.batch, self.ledger = BatchLedger(jobs), DurableLedger(jobs)
        self.queue, self.worker_id, self.lease_ms = queue, worker_id, lease_ms
        self.breaker, self.limiter, self.acquire_timeout_s = breaker, limiter, acquire_timeout_s
        self.clock, self.rng = clock, rng or random.Random()

    def handle(self, campaign_id: str, number: int) -> str:
        """Send chunk ``number`` of ``campaign_id``; returns what happened (logs, tests).

        One ``consumer`` span per attempt, with the campaign, the chunk's number, the
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
        gate = self.breaker.allow(V1_BULK) if self.breaker is not None else None
        if gate is not None and not gate.allowed:
            return self._defer(message, campaign_id, number, max(gate.retry_in_ms, 1000))
        try:
            return self._send(campaign, message, number, gate)
        finally:
            # A half-open probe that ended without an outcome (no token, parked,
            # skipped) gives its slots back at once rather than at its lease's end.
            if self.breaker is not None:
                self.breaker.release(gate)

    def _send(
        self, campaign: Campaign, message: Message[Any], number: int, gate: Decision | None
    ) -> str:
        campaign_id = campaign.campaign_id
        # One token of the SMS bucket per HTTP call: Connectus throttles requests
        # (429, ESME_RTHROTTLED). The first call's is taken before the claim.
        try:
            self._admit()
        except RateLimitRefused as exc:
            return self._defer(message, campaign_id, number, exc.retry_in_ms)
        rows = self.ledger.call(self.campaigns.chunk, campaign_id, number)
        base = number * campaign.chunk_size
        ids = [job_id_for(campaign_id, base + i) for i in range(len(rows))]
        chunk = _Chunk(campaign, number, message, ids, rows)
        # Only what send_sms_bulk takes; a full payload (payload_for) is made for
        # the few recipients that go on as single sends (errors, unknown).
        render = template_of(campaign).render_row
        texts = [render(row) for row in rows]
        # The records are made by the first claim: each keeps the masked number
        # and its segments, as a single send's record does.
        made = [(row[0], masked(campaign, row[0]), sms_segments(text))
                for row, text in zip(rows, texts, strict=True)]  # fmt: skip
        bulk = BulkChunk(campaign_id, number, base, campaign.kind.value, self.queue,
                         self.campaigns.ttl_s)  # fmt: skip
        claims = self.ledger.call(
            self.batch.claim_bulk, bulk, made, worker_id=self.worker_id, lease_ms=self.lease_ms,
            token=uuid.uuid4().hex, recipient_key=self.campaigns.recipient_key,
        )  # fmt: skip
        if any(c.status == "paused" for c in claims):
            member = f"chunk:{number}"
            where = self.ledger.call(self.campaigns.park, campaign_id, member, message)
            log.info("bulk.parked", campaign=campaign_id, chunk=number, answer=where)
            return f"parked:{where}"
        for i, claim in enumerate(claims):
            if claim.status in ("expired", "unknown"):
                # A worker died mid-bulk: the job is now unknown; keep its message.
                single = self._single(chunk, i)
                self.ledger.call(self.jobs.hold_message, chunk.ids[i], single)
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
        try:
            for call, (start, end) in enumerate(groups):
                part = sending[start:end]
                try:
                    if call:
                        self._admit()
                except RateLimitRefused as refused:
                    # This call and the later ones wait for a token with the chunk.
                    self._release(chunk, sending[start:], unsent_error(refused))
                    return f"sent:{sent}+deferred"
                try:
                    result = self.client.v1.send_sms_bulk(
                        messages=messages[start:end], delivery_name=name, deliver_at=now_local
                    )
                except ConnectusError as exc:
                    tracing.annotate(error=type(exc).__name__, reason=exc.reason)
                    tell(self.breaker, self.limiter, "sms", gate, exc)
                    if end < len(sending):
                        # The later groups were never sent: they come back with the chunk.
                        self._release(chunk, sending[end:], exc, delay_ms=1000)
                    answer = self._failed_call(chunk, part, exc)
                    return f"sent:{sent}+{answer}" if sent else answer
                tell(self.breaker, self.limiter, "sms", gate, None)
                if result.id_delivery:
                    deliveries.append(result.id_delivery)
                sent += self._record(chunk, part, result)
            return f"sent:{sent}"
        finally:
            if deliveries:  # one a call, comma-separated, for status polling
                self.ledger.call(self.campaigns.set_delivery, campaign_id, number,
                                 ",".join(deliveries))  # fmt: skip

    def _record(self, chunk: _Chunk, part: list[tuple[int, Claim]], result: BulkResult) -> int:
        """Finish the recipients of one answered call; returns how many were sent."""
        finishes, sent_items = [], []
        for (i, claim), item in zip(part, result.items, strict=True):
            if item.ok:
                sent_items.append((chunk.ids[i], claim.fence, str(item.provider_id)))
                continue
            # Neither an id nor an error: perhaps accepted. Ambiguous (reconciled),
            # never a dead letter, whose replay could charge it again.
            error: ConnectusError = MalformedResponse(
                "bulk item with neither id_sms nor error", reason="bulk_item_without_id"
            )
            if item.error:
                verdict = for_bulk_item(item.error)
                error = verdict.error(f"bulk item refused: {item.error}", reason=verdict.reason)
            finishes.append(self._outcome(chunk, i, claim, error))
        if sent_items:
            shared: dict[str, str | int] = {"state": "sent", "outcome": "sent",
                                            "sent_at": self.clock(), "error_class": "",
                                            "last_error": ""}  # fmt: skip
            self.ledger.call(self.batch.finish_sent_many, sent_items, shared)
        if finishes:
            self.ledger.call(self.batch.finish_many, finishes)
        log.info("bulk.sent", campaign=chunk.campaign.campaign_id, chunk=chunk.number,
                 sent=len(sent_items), refused=len(finishes),
                 id_delivery=result.id_delivery)  # fmt: skip
        return len(sent_items)

    def _release(
        self, chunk: _Chunk, unsent: list[tuple[int, Claim]], exc: ConnectusError,
        delay_ms: int | None = None,
    ) -> str:  # fmt: skip
        """Give back claimed recipients that were never sent (``retrying``); the chunk
        message comes back after ``delay_ms`` (default: the error's retry-after, else
        1 s) and sends them."""
        if delay_ms is None:
            delay_ms = int(1000 if exc.retry_after_s is None else exc.retry_after_s * 1000)
        fields = {**error_fields("retrying", exc.outcome, exc),
                  "next_attempt_at": self.clock() + delay_ms}  # fmt: skip
        held = [Finish(chunk.ids[i], c.fence, "done", fields) for i, c in unsent]
        self.ledger.call(self.batch.finish_many, held)
        return self._defer(chunk.message, chunk.campaign.campaign_id, chunk.number, delay_ms)

    def _admit(self) -> None:
        """Take one SMS token for one HTTP call; raises :class:`RateLimitRefused`."""
        if self.limiter is not None:
            self.limiter.acquire("sms", timeout_s=self.acquire_timeout_s)

    def _failed_call(
        self, chunk: _Chunk, sending: list[tuple[int, Claim]], exc: ConnectusError
    ) -> str:
        log.warning("bulk.failed", campaign=chunk.campaign.campaign_id, chunk=chunk.number,
                    error=type(exc).__name__, reason=exc.reason)  # fmt: skip
        attempts = max(claim.attempts for _, claim in sending)
        decision = decide(exc, attempts, self.policy, self.rng)
        if decision.action == "retry":  # nothing was sent: the same chunk comes back
            self._release(chunk, sending, exc, delay_ms=decision.delay_ms)
            return "retrying"
        finishes = [self._outcome(chunk, i, claim, exc) for i, claim in sending]
        self.ledger.call(self.batch.finish_many, finishes)
        return "unknown" if decision.action == "unknown" else "failed"

    def _outcome(self, chunk: _Chunk, i: int, claim: Claim, exc: ConnectusError) -> Finish:
        """Recipient ``i``'s outcome after an error, as a single v3 send from here on."""
        single = self._single(chunk, i)
        decision = decide(exc, claim.attempts, self.policy, self.rng)
        fields = failure_fields(decision, exc, self.clock())
        if decision.action == "retry":
            due = int(fields["next_attempt_at"])
            return Finish(chunk.ids[i], claim.fence, "retry", fields, single, due)
        # An unknown one is scored by when it became unknown (the finish's time), as a
        # single send's: the reconciler waits RECONCILE_AFTER_S and resends only after.
        mode: FinishMode = "dead" if decision.action == "fail" else "unknown"
        return Finish(chunk.ids[i], claim.fence, mode, fields, single)

    def _single(self, chunk: _Chunk, i: int) -> Message[Any]:
        payload = payload_for(chunk.campaign, chunk.rows[i])[0]
        return single_message(chunk.campaign, chunk.ids[i], payload, self.queue, self.clock())

    def _defer(self, message: Message[Any], campaign_id: str, number: int, delay_ms: int) -> str:
        member = f"chunk:{campaign_id}:{number}"
        self.ledger.call(self.jobs.defer, member, message, self.clock() + max(delay_ms, 50))
        return "deferred"
