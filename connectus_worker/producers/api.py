"""The producer API: validate, then create the job record and enqueue in one step.

Producers talk to Redis only; they never import the worker or call
Connectus. A send is one Lua round trip (:meth:`ledger.jobs.JobStore.enqueue`):
the idempotency check, the job record and the Dramatiq message are written
atomically, so a crash can't leave a record without its message or a
message without its record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypedDict, Unpack

import redis

import connectus_worker.tracing as tracing
from connectus_worker.campaign.pending import placeholder
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.config import Settings
from connectus_worker.config.tenants import DEFAULT_TENANT, tenant_problem
from connectus_worker.domain.hashing import content_digest
from connectus_worker.domain.models import JobRecord, Kind
from connectus_worker.domain.requests import SendRequest, parse_request
from connectus_worker.domain.validation import (
    FieldError,
    InvalidInput,
    check_correlation_id,
    validate_idempotency_key,
)
from connectus_worker.durability import Durability
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.lookup import index_keys
from connectus_worker.ledger.status_watch import WATCHED_KINDS
from connectus_worker.producers.optout import refuse_if_opted_out
from connectus_worker.redis import connect
from connectus_worker.transport.routing import Priority, queue_for


class SendOptions(TypedDict, total=False):
    """Keyword options of every ``send_*`` (the fields of :mod:`domain.requests`).

    ``deliver_at``: a datetime, or ISO 8601 text (naive = ``DEFAULT_TIMEZONE``).
    ``max_age_s`` (seconds after it is due) or ``expires_at`` (aware), not both:
    the job is never sent after that, and fails as ``Expired``; without either,
    ``MAX_MESSAGE_AGE_S`` applies, or ``OTP_MAX_AGE_S`` to an OTP (:mod:`domain.expiry`).
    """

    idempotency_key: str | None
    correlation_id: str | None
    deliver_at: datetime | str | None
    max_age_s: float | None
    expires_at: datetime | str | None


class RoutedOptions(SendOptions, total=False):
    """And ``priority``: ``"bulk"`` = marketing (its own queue; refused for opted-out numbers)."""

    priority: Priority


class BilledOptions(RoutedOptions, total=False):
    """And the subclient (``id_client``) and its own delivery id."""

    id_client: str | None
    id_delivery: str | None


class JobNotFound(LookupError):
    """No record for this job id (never created, or its TTL ran out)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job_id: no job {job_id!r} (unknown, or its record expired)")


def job_placeholder(settings: Settings, client: redis.Redis, job_id: str) -> JobRecord | None:
    """The pending record of a v1 bulk recipient not claimed yet (None otherwise)."""
    campaigns = CampaignStore(client, Keys(settings.key_prefix), ttl_s=settings.campaign_ttl_s,
                              job_ttl_s=settings.job_ttl_s)  # fmt: skip
    return placeholder(campaigns, job_id, queue=settings.queue_bulk)


def job_tenant(settings: Settings, client: redis.Redis, record: JobRecord) -> str:
    """Who owns the job: a campaign's job is its campaign's tenant's (the records
    the workers make for campaign recipients name only the campaign); any other,
    the tenant in its record."""
    if record.campaign is None:
        return record.tenant
    campaigns = CampaignStore(client, Keys(settings.key_prefix), ttl_s=settings.campaign_ttl_s,
                              job_ttl_s=settings.job_ttl_s)  # fmt: skip
    campaign = campaigns.get(record.campaign)
    return campaign.tenant if campaign is not None else record.tenant


def owned_record(
    settings: Settings, client: redis.Redis, job_id: str, tenant: str, store: JobStore | None = None
) -> JobRecord | None:
    """The job's record (or a pending v1 bulk recipient's placeholder) if ``tenant``
    owns it, with its owner in ``tenant``; None if it is unknown, expired or another
    tenant's (the two are not told apart: another tenant's job does not exist here).
    ``store``: the caller's, if it has one (else one is made)."""
    store = store or JobStore(client, Keys(settings.key_prefix), ttl_s=settings.job_ttl_s)
    record = store.get(job_id) or job_placeholder(settings, client, job_id)
    if record is None:
        return None
    owner = job_tenant(settings, client, record)
    if owner != tenant:
        return None
    return record if record.tenant == owner else record.model_copy(update={"tenant": owner})


def cancel_owned(
    settings: Settings, client: redis.Redis, job_id: str, tenant: str, store: JobStore | None = None
) -> str:
    """Cancel ``tenant``'s job: ``cancelled``, ``refused:<state>`` or ``missing`` (also
    for another tenant's job). The owner is checked first: a job's tenant never changes."""
    store = store or JobStore(client, Keys(settings.key_prefix), ttl_s=settings.job_ttl_s)
    if owned_record(settings, client, job_id, tenant, store) is None:
        return "missing"
    return cancel_answer(settings, client, job_id, store.cancel(job_id))


def cancel_answer(settings: Settings, client: redis.Redis, job_id: str, answer: str) -> str:
    """:meth:`JobStore.cancel`'s ``answer``, except for a pending recipient of a v1
    bulk campaign (``missing``: it has no record until its chunk is claimed).

    That one goes with its chunk: ``refused:queued``. Cancel its campaign, or the
    number opts out (STOP), which the chunk's claim reads.
    """
    if answer == "missing" and job_placeholder(settings, client, job_id) is not None:
        return "refused:queued"
    return answer


class Producer:
    """Enqueues send jobs. Thread-safe; build one per process and reuse it.

    The ``send_*`` methods take the fields of :mod:`domain.requests` (Connectus's
    names), the options typed in :class:`SendOptions` and its subclasses; every
    bad value is an :class:`InvalidInput` naming its field.

    ``tenant`` (:mod:`config.tenants`; default ``default``) owns the jobs it
    sends: its idempotency keys are its own (another tenant's same key is another
    job), and :meth:`get_status` and :meth:`cancel` see only its jobs.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        tenant: str = DEFAULT_TENANT,
        redis_client: redis.Redis | None = None,
        clock: Callable[[], int] = epoch_ms,
    ) -> None:
        problem = tenant_problem(tenant)
        if problem is not None:
            raise InvalidInput("tenant", problem)
        self.tenant = tenant
        self.settings = settings
        self.redis = redis_client or connect(settings)
        # An enqueue is confirmed (durability) before its job id is returned.
        durability = Durability.from_settings(settings)
        self.store = JobStore(self.redis, Keys(settings.key_prefix), ttl_s=settings.job_ttl_s,
                              clock=clock, durability=durability)  # fmt: skip
        self.clock = clock

    # -- one function per send type (the fields of domain.requests, typed) --------------

    def send_sms(
        self,
        dst_number: str | int,
        sms_content: str,
        *,
        src_number: str | int | None = None,
        **options: Unpack[BilledOptions],
    ) -> str:
        """Queue an SMS (v3 ``send_individual``); returns the job id."""
        fields = {"dst_number": dst_number, "sms_content": sms_content, "src_number": src_number}
        return self._send("sms", fields, options)

    def send_otp(
        self,
        dst_number: str | int,
        sms_content: str,
        *,
        src_number: str | int | None = None,
        **options: Unpack[SendOptions],
    ) -> str:
        """Queue an OTP SMS on the OTP queue; Connectus stores it hashed."""
        fields = {"dst_number": dst_number, "sms_content": sms_content, "src_number": src_number}
        return self._send("otp", fields, options)

    def send_email(
        self,
        dst_email: str,
        subject: str,
        email_content: str,
        *,
        src_email: str | None = None,
        **options: Unpack[BilledOptions],
    ) -> str:
        """Queue an e-mail (``email_content`` is HTML; ``src_email`` default
        ``CONNECTUS_DEFAULT_SRC_EMAIL``)."""
        fields = {"dst_email": dst_email, "subject": subject, "email_content": email_content,
                  "src_email": src_email}  # fmt: skip
        return self._send("email", fields, options)

    def send_otp_email(
        self,
        dst_email: str,
        subject: str,
        email_content: str,
        *,
        src_email: str | None = None,
        **options: Unpack[SendOptions],
    ) -> str:
        """Queue an OTP e-mail on the OTP queue."""
        fields = {"dst_email": dst_email, "subject": subject, "email_content": email_content,
                  "src_email": src_email}  # fmt: skip
        return self._send("otp_email", fields, options)

    def send_whatsapp(
        self,
        dst_number: str | int,
        whatsapp_content: str,
        *,
        src_number: str | int | None = None,
        **options: Unpack[BilledOptions],
    ) -> str:
        """Queue a WhatsApp message (v3 API); ``src_number``: the account's origin
        (default ``CONNECTUS_WHATSAPP_SRC_NUMBER``, required if that is unset)."""
        fields = {"dst_number": dst_number, "whatsapp_content": whatsapp_content,
                  "src_number": src_number}  # fmt: skip
        return self._send("whatsapp", fields, options)

    def send_whatsapp_qr(
        self, number: str | int, message: str, **options: Unpack[RoutedOptions]
    ) -> str:
        """Queue a message through the WhatsApp QR API (``POST /send``)."""
        return self._send("whatsapp_qr", {"number": number, "message": message}, options)

    def send_whatsapp_qr_group(
        self, group_name: str, message: str, **options: Unpack[RoutedOptions]
    ) -> str:
        """Queue a message to a WhatsApp group through the QR API (``POST
        /send-message-to-group {groupName, message}``); the group must exist
        (``connectus qr groups create``)."""
        fields = {"group_name": group_name, "message": message}
        return self._send("whatsapp_qr_group", fields, options)

    def _send(self, kind: str, fields: dict[str, Any], options: Mapping[str, Any]) -> str:
        rest = dict(options)
        key, correlation_id = rest.pop("idempotency_key", None), rest.pop("correlation_id", None)
        # An unknown keyword (mypy flags it) reaches the model, which names it.
        return self.send(kind, {**fields, **rest}, key, correlation_id)

    def send(
        self,
        kind: str,
        fields: Mapping[str, Any],
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Validate ``fields`` as a ``kind`` message (:func:`domain.requests.parse_request`)
        and queue it; raises :class:`InvalidInput` naming every bad field, the key's too."""
        errors: list[FieldError] = []
        request = None
        try:
            request = parse_request({**fields, "type": kind}, self.settings, tenant=self.tenant)
        except InvalidInput as exc:
            errors.extend(exc.errors)
        if idempotency_key is not None:
            try:
                validate_idempotency_key(idempotency_key)
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if correlation_id is not None:
            try:
                check_correlation_id(correlation_id)
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if errors or request is None:
            raise InvalidInput.from_errors(errors)
        return self.submit(request, idempotency_key, correlation_id)

    # -- lookups ------------------------------------------------------------------

    def get_status(self, job_id: str) -> JobRecord:
        """The job's record; raises :class:`JobNotFound` (also for another tenant's job).

        A released v1 bulk recipient whose chunk was not claimed yet has no
        record: it shows as :func:`campaign.pending.placeholder` makes it.
        """
        record = owned_record(self.settings, self.redis, job_id, self.tenant, self.store)
        if record is None:
            raise JobNotFound(job_id)
        return record

    def cancel(self, job_id: str) -> str:
        """Cancel a queued or scheduled job: ``cancelled``, ``refused:<state>`` or ``missing``
        (also for another tenant's job).

        See :func:`cancel_answer` for a recipient of a v1 bulk campaign.
        """
        return cancel_owned(self.settings, self.redis, job_id, self.tenant, self.store)

    # -- the one path every send takes ------------------------------------------------

    def submit(
        self,
        request: SendRequest,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Enqueue a validated request; returns its job id (the first one's, for a repeated key)."""
        job_id = uuid.uuid4().hex
        queue = queue_for(request.kind, self.settings, request.priority)
        attributes = {"job_id": job_id, "kind": request.kind.value, "queue": queue}
        with tracing.span(f"enqueue {request.kind.value}", "producer", attributes):
            found = self._enqueue(request, job_id, queue, idempotency_key, correlation_id)
            tracing.annotate(job_id=found)  # the first job's, for a repeated key
            return found

    def _enqueue(self, request: SendRequest, job_id: str, queue: str,
                 idempotency_key: str | None, correlation_id: str | None) -> str:  # fmt: skip
        key = idempotency_key or f"job:{job_id}"
        now = self.clock()
        account = self.settings.account_for(self.tenant, request.account)
        job = {
            "job_id": job_id,
            "kind": request.kind.value,
            "key": key,
            "queue": queue,
            "payload": request.payload,
            "created_ms": now,
            "account": account,
        }
        if correlation_id:
            job["correlation_id"] = correlation_id
        trace_context = tracing.carrier()
        if trace_context:  # the worker's spans join this trace (tracing)
            job[tracing.TRACE_FIELD] = trace_context
        record: dict[str, str | int] = {
            "job_id": job_id,
            "kind": request.kind.value,
            "queue": queue,
            "idempotency_key": key,
            "dst": request.masked_dst,
            "account": account,
            "attempts": 0,
            "fence": 0,
            "created_at": now,
            "updated_at": now,
        }
        if request.segments is not None:
            record["segments"] = request.segments
        if request.kind.is_otp:
            # The record keeps only a keyed digest of an OTP (domain.hashing); the
            # plain text lives in the queued message until it is sent.
            record["content_hmac"] = content_digest(
                self.settings.content_key, request.payload[request.kind.content_field]
            )
        if correlation_id:
            record["correlation_id"] = correlation_id
        due_ms = int(request.deliver_at.timestamp() * 1000) if request.deliver_at else None
        if due_ms is not None:
            record["deliver_at"] = due_ms
            # Its age counts from here, not from its creation (domain.expiry).
            job["due_ms"] = due_ms
        expires_ms = request.expires_ms(now)
        if expires_ms is not None:
            record["expires_at"] = expires_ms
            job["expires_ms"] = expires_ms
        refuse_if_opted_out(self.redis, self.store.keys, request)
        message = new_message(queue, request.kind.actor_name, job)
        result = self.store.enqueue(
            job_id=job_id,
            idempotency_key=idempotency_key or None,
            fingerprint=request.fingerprint(self.settings.content_key),
            message=message,
            record=record,
            due_ms=due_ms,
            tenant=self.tenant,
            index_keys=index_keys(
                self.store.keys,
                self.settings.content_key,
                # A group's name is no person's: not a recipient to search by.
                recipient=None if request.kind is Kind.WHATSAPP_QR_GROUP else request.dst,
                idempotency_key=idempotency_key or None,
                correlation_id=correlation_id,
            ),
            # Its delivery status is polled (worker.channel_status).
            watch_ms=(due_ms or now) if request.kind in WATCHED_KINDS else None,
        )
        return result.job_id
