"""The producer API: validate, then write the job record and its message in one step.

Producers talk to Redis only; they never import the worker or call Connectus. A send
is one Lua round trip (:meth:`ledger.jobs.JobStore.enqueue`): the idempotency check,
the job record and the Dramatiq message are written atomically, so a crash can't
leave a record without its message or a message without its record.
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
    ErrorCollector,
    InvalidInput,
    check_correlation_id,
    validate_idempotency_key,
)
from connectus_worker.durability import Durability
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.lookup import index_keys
from connectus_worker.producers.optout import refuse_if_opted_out
from connectus_worker.redis import connect
from connectus_worker.transport.routing import Priority, queue_for


class SendOptions(TypedDict, total=False):
    """Keyword options of every ``send_*`` (the fields of :mod:`domain.requests`).

    ``deliver_at``: a datetime, or ISO 8601 text (naive = ``DEFAULT_TIMEZONE``).
    ``max_age_s`` (seconds after it is due) or ``expires_at`` (aware), not both: the
    job is never sent after that (it fails as ``Expired``); without either,
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


def _campaigns(settings: Settings, client: redis.Redis) -> CampaignStore:
    return CampaignStore(client, Keys(settings.key_prefix), ttl_s=settings.campaign_ttl_s,
                         job_ttl_s=settings.job_ttl_s)  # fmt: skip


def owned_record(settings: Settings, job_id: str, tenant: str, store: JobStore) -> JobRecord | None:
    """The job's record (or a pending v1 bulk recipient's placeholder) if ``tenant``
    owns it, with its owner in ``tenant``; None if it is unknown, expired or another
    tenant's (not told apart: another tenant's job does not exist here).

    A campaign's job is its campaign's tenant's: the records the workers make for
    campaign recipients name only the campaign.
    """
    campaigns = _campaigns(settings, store.client)
    record = store.get(job_id) or placeholder(campaigns, job_id, queue=settings.queue_bulk)
    if record is None:
        return None
    campaign = campaigns.get(record.campaign) if record.campaign is not None else None
    owner = campaign.tenant if campaign is not None else record.tenant
    if owner != tenant:
        return None
    return record if record.tenant == owner else record.model_copy(update={"tenant": owner})


def cancel_owned(settings: Settings, job_id: str, tenant: str, store: JobStore) -> str:
    """Cancel ``tenant``'s job: ``cancelled``, ``refused:<state>`` or ``missing`` (also
    for another tenant's job). The owner is checked first: a job's tenant never changes.

    A pending recipient of a v1 bulk campaign has no record until its chunk is claimed:
    it goes with its chunk (``refused:queued``). Cancel its campaign, or the number opts
    out (STOP), which the chunk's claim reads.
    """
    if owned_record(settings, job_id, tenant, store) is None:
        return "missing"
    answer = store.cancel(job_id)
    pending = placeholder(_campaigns(settings, store.client), job_id, queue=settings.queue_bulk)
    return "refused:queued" if answer == "missing" and pending is not None else answer


class Producer:
    """Enqueues send jobs. Thread-safe; build one per process and reuse it.

    The ``send_*`` methods take the fields of :mod:`domain.requests` (Connectus's
    names) and the options typed in :class:`SendOptions` and its subclasses; every
    bad value is an :class:`InvalidInput` naming its field.

    ``tenant`` (:mod:`config.tenants`) owns the jobs it sends: its idempotency keys
    are its own, and :meth:`get_status` and :meth:`cancel` see only its jobs.
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

    # -- one typed function per kind; all of them are send() -----------------------------

    def send_sms(
        self,
        dst_number: str | int,
        sms_content: str,
        *,
        src_number: str | int | None = None,
        **options: Unpack[BilledOptions],
    ) -> str:
        """Queue an SMS (v3 ``send_individual``); returns the job id."""
        return self._send(Kind.SMS, locals())

    def send_otp(
        self,
        dst_number: str | int,
        sms_content: str,
        *,
        src_number: str | int | None = None,
        **options: Unpack[SendOptions],
    ) -> str:
        """Queue an OTP SMS on the OTP queue; Connectus stores it hashed."""
        return self._send(Kind.OTP, locals())

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
        return self._send(Kind.EMAIL, locals())

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
        return self._send(Kind.OTP_EMAIL, locals())

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
        return self._send(Kind.WHATSAPP, locals())

    def send_whatsapp_qr(
        self, number: str | int, message: str, **options: Unpack[RoutedOptions]
    ) -> str:
        """Queue a message through the WhatsApp QR API (``POST /send``)."""
        return self._send(Kind.WHATSAPP_QR, locals())

    def send_whatsapp_qr_group(
        self, group_name: str, message: str, **options: Unpack[RoutedOptions]
    ) -> str:
        """Queue a message to a WhatsApp group through the QR API (``POST
        /send-message-to-group``); the group must exist (``connectus qr groups create``)."""
        return self._send(Kind.WHATSAPP_QR_GROUP, locals())

    def _send(self, kind: Kind, arguments: dict[str, Any]) -> str:
        """Send ``send_*``'s ``locals()``: its parameters are the request's fields, by name."""
        fields = {name: value for name, value in arguments.items() if name != "self"}
        fields |= fields.pop("options")  # an unknown keyword (mypy flags it): the model names it
        key = fields.pop("idempotency_key", None)
        return self.send(kind.value, fields, key, fields.pop("correlation_id", None))

    def send(
        self,
        kind: str,
        fields: Mapping[str, Any],
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Validate ``fields`` as a ``kind`` message (:func:`domain.requests.parse_request`)
        and queue it; raises :class:`InvalidInput` naming every bad field, the key's too."""
        errors = ErrorCollector()
        data = {**fields, "type": kind}
        request = errors.check(parse_request, data, self.settings, tenant=self.tenant)
        if idempotency_key is not None:
            errors.check(validate_idempotency_key, idempotency_key)
        if correlation_id is not None:
            errors.check(check_correlation_id, correlation_id)
        errors.raise_if_any()
        assert request is not None  # no error: parsed
        return self.submit(request, idempotency_key, correlation_id)

    def get_status(self, job_id: str) -> JobRecord:
        """The job's record; raises :class:`JobNotFound` (also for another tenant's job).
        A v1 bulk recipient whose chunk is not claimed yet shows as its placeholder."""
        record = owned_record(self.settings, job_id, self.tenant, self.store)
        if record is None:
            raise JobNotFound(job_id)
        return record

    def cancel(self, job_id: str) -> str:
        """Cancel a queued or scheduled job: see :func:`cancel_owned`."""
        return cancel_owned(self.settings, job_id, self.tenant, self.store)

    # -- the one path every send takes ------------------------------------------------

    def submit(
        self,
        request: SendRequest,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Enqueue a validated request; returns its job id (the first one's, for a repeated key)."""
        job_id = uuid.uuid4().hex
        kind, spec = request.kind, request.kind.spec
        queue = queue_for(kind, self.settings, request.priority)
        with tracing.span(f"enqueue {kind.value}", "producer",
                          {"job_id": job_id, "kind": kind.value, "queue": queue}):  # fmt: skip
            key = idempotency_key or f"job:{job_id}"
            now = self.clock()
            account = self.settings.account_for(self.tenant, request.account)
            job: dict[str, Any] = {
                "job_id": job_id, "kind": kind.value, "key": key, "queue": queue,
                "payload": request.payload, "created_ms": now, "account": account,
            }  # fmt: skip
            record: dict[str, str | int] = {
                "job_id": job_id, "kind": kind.value, "queue": queue, "idempotency_key": key,
                "dst": request.masked_dst, "account": account, "attempts": 0, "fence": 0,
                "created_at": now, "updated_at": now,
            }  # fmt: skip
            if request.segments is not None:
                record["segments"] = request.segments
            if spec.otp:
                # Only a keyed digest of an OTP is kept (domain.hashing); the plain text
                # lives in the queued message until it is sent.
                code = request.payload[spec.content_field]
                record["content_hmac"] = content_digest(self.settings.content_key, code)
            if correlation_id:
                job["correlation_id"] = record["correlation_id"] = correlation_id
            trace_context = tracing.carrier()
            if trace_context:  # the worker's spans join this trace (tracing)
                job[tracing.TRACE_FIELD] = trace_context
            due_ms = int(request.deliver_at.timestamp() * 1000) if request.deliver_at else None
            if due_ms is not None:
                # Its age counts from here, not from its creation (domain.expiry).
                job["due_ms"] = record["deliver_at"] = due_ms
            expires_ms = request.expires_ms(now)
            if expires_ms is not None:
                job["expires_ms"] = record["expires_at"] = expires_ms
            refuse_if_opted_out(self.redis, self.store.keys, request)
            found = self.store.enqueue(
                job_id=job_id,
                idempotency_key=idempotency_key or None,
                fingerprint=request.fingerprint(self.settings.content_key),
                message=new_message(queue, kind.actor_name, job),
                record=record,
                due_ms=due_ms,
                tenant=self.tenant,
                index_keys=index_keys(
                    self.store.keys,
                    self.settings.content_key,
                    # A group's name is no person's: not a recipient to search by.
                    recipient=request.dst if spec.person else None,
                    idempotency_key=idempotency_key or None,
                    correlation_id=correlation_id,
                ),
                # Its delivery status is polled (worker.channel_status).
                watch_ms=(due_ms or now) if spec.watched else None,
            )
            tracing.annotate(job_id=found)
            return found
