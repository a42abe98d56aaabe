"""Job kinds, states and the job record: the vocabulary producers and workers share.

States (``JobRecord.state``)::

    scheduled ──(due)──► queued ──► sending ──► sent
                           ▲           │  ├───► failed     (permanent; dead-lettered)
                           │           │  └───► unknown    (ambiguous; reconciled, not resent)
                           └─ retrying ◄┘ (transient; durable retry with backoff)
    any non-terminal ──► cancelled

``sent``, ``failed`` and ``cancelled`` are terminal: a job in one of them is
never sent again, whatever retries, redeliveries or restarts happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.redis import text

#: The longest body of each channel, in characters (``KindSpec.max_chars``).
SMS_MAX_CHARS = 1_600  # 10 segments of 160: a runaway template fails here, not in the bill
EMAIL_MAX_CHARS = 1_000_000  # about 1 MB of (mostly ASCII) HTML
WHATSAPP_MAX_CHARS = 4_096  # WhatsApp's own limit for a text message


class Kind(StrEnum):
    """What a job sends; one Dramatiq actor per kind."""

    SMS = "sms"
    OTP = "otp"
    EMAIL = "email"
    OTP_EMAIL = "otp_email"
    WHATSAPP = "whatsapp"
    WHATSAPP_QR = "whatsapp_qr"
    #: A message to a WhatsApp group through the QR API (``send-message-to-group``).
    WHATSAPP_QR_GROUP = "whatsapp_qr_group"

    @property
    def actor_name(self) -> str:
        return f"send_{self.value}"

    @property
    def spec(self) -> KindSpec:
        """What each layer needs to know of this kind (:data:`KINDS`)."""
        return KINDS[self]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One kind, as the layers read it (one row of :data:`KINDS`).

    - ``dst_field``: the payload field naming the destination (number, address, group);
    - ``content_field``: the Connectus field that carries the message body;
    - ``max_chars``: the longest body it takes, in characters;
    - ``call``: the :class:`worker.connectus.client.ConnectusClient` method that sends it;
    - ``rate_product``: the limiter's bucket (an OTP, SMS or e-mail, draws on ``otp``);
    - ``host``, ``product``: the API host and the product its breaker scopes and balance
      are kept by (:mod:`worker.breaker_scopes`);
    - ``otp``: on the OTP queue, kept hashed, never resent late;
    - ``segmented``: charged per 160-character SMS segment (else once per message);
    - ``watched``: its delivery status is polled (:mod:`ledger.status_watch`);
    - ``lookup``: the Connectus listing that finds a sent one again (reconciliation and
      provider-id lookups, :mod:`worker.id_lookup`); None: there is none (e-mail);
    - ``person``: sent to a person's number or address (rate caps, opt-outs), not a group.
    """

    dst_field: str
    content_field: str
    max_chars: int
    call: str
    rate_product: str
    host: str
    product: str
    otp: bool = False
    segmented: bool = False
    watched: bool = False
    lookup: str | None = None
    person: bool = True

    @property
    def email(self) -> bool:
        """Sent to an e-mail address (masked, deduplicated and titled as one)."""
        return self.dst_field == "dst_email"

    @property
    def phone(self) -> bool:
        """Sent to a person's phone number (opt-outs are per number)."""
        return self.person and not self.email


KINDS: Mapping[Kind, KindSpec] = {
    Kind.SMS: KindSpec("dst_number", "sms_content", SMS_MAX_CHARS, "v3.send_sms", "sms", "v3",
                       "sms", segmented=True, lookup="sms"),
    Kind.OTP: KindSpec("dst_number", "sms_content", SMS_MAX_CHARS, "v3.send_otp", "otp", "v3",
                       "sms", otp=True, segmented=True, lookup="sms"),
    Kind.EMAIL: KindSpec("dst_email", "email_content", EMAIL_MAX_CHARS, "v3.send_email", "email",
                         "v3", "email", watched=True),
    Kind.OTP_EMAIL: KindSpec("dst_email", "email_content", EMAIL_MAX_CHARS, "v3.send_otp_email",
                             "otp", "v3", "email", otp=True, watched=True),
    Kind.WHATSAPP: KindSpec("dst_number", "whatsapp_content", WHATSAPP_MAX_CHARS,
                            "v3.send_whatsapp", "whatsapp", "v3", "whatsapp", watched=True,
                            lookup="whatsapp"),
    Kind.WHATSAPP_QR: KindSpec("number", "message", WHATSAPP_MAX_CHARS, "qr.send", "whatsapp",
                               "qr", "whatsapp_qr", lookup="qr"),
    Kind.WHATSAPP_QR_GROUP: KindSpec("group_name", "message", WHATSAPP_MAX_CHARS,
                                     "qr.send_message_to_group", "whatsapp", "qr", "whatsapp_qr",
                                     lookup="qr_group", person=False),
}  # fmt: skip


class State(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({State.SENT, State.FAILED, State.CANCELLED})
_TIMES = {"created_at", "updated_at", "deliver_at", "expires_at", "next_attempt_at", "sent_at",
          "delivery_status_at"}  # fmt: skip


class JobRecord(BaseModel):
    """A job's record as stored in Redis (``{prefix}:job:{id}``), with a TTL.

    Personal data is kept masked (``dst``) and OTP content only as a keyed
    digest (``content_hmac``, :func:`domain.hashing.content_digest`), which no
    answer shows (``exclude``: not in ``model_dump``, the API or the CLI).
    Times are UTC.
    """

    model_config = ConfigDict(frozen=True)

    job_id: str
    kind: Kind
    state: State
    queue: str
    idempotency_key: str
    dst: str
    attempts: int = 0
    provider_id: str | None = None
    # Set when Connectus accepted the send without naming it (the documented
    # SMS answer): ``pending`` while the id is looked up, ``found``,
    # ``not_found`` (never listed: the id stays unknown; the job stays sent) or
    # ``no_listing`` (e-mail: nothing to look it up in). See worker.id_lookup.
    provider_id_lookup: str | None = None
    outcome: str | None = None
    error_class: str | None = None
    last_error: str | None = None
    segments: int | None = None
    # HMAC-SHA256 under CONTENT_HASH_KEY; kept for support (compare a code
    # with the key in hand), never shown: not in the API's or the CLI's answers.
    content_hmac: SkipJsonSchema[str | None] = Field(default=None, exclude=True)
    created_at: datetime
    updated_at: datetime
    deliver_at: datetime | None = None
    # The producer's own limit (max_age_s / expires_at): never sent after it.
    expires_at: datetime | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    correlation_id: str | None = None
    # Connectus's own status of the message (platform status from the SMS
    # status webhook, e.g. ENTREGADO) and when we received it.
    delivery_status: str | None = None
    delivery_status_at: datetime | None = None
    # The campaign this job sends for (a recipient of it), if any.
    campaign: str | None = None
    # Who owns it (config/tenants.py): the producer's tenant, or the intake
    # token's. A campaign's jobs are its campaign's tenant's. Records written
    # before tenants existed have none: the default tenant.
    tenant: str = DEFAULT_TENANT
    # The Connectus account that sends it (config/accounts.py). Records written
    # before accounts existed have none: the first account sends them.
    account: str | None = None

    @classmethod
    def from_redis(cls, raw: Mapping[Any, Any]) -> JobRecord:
        """Build from an ``HGETALL`` answer: times are stored as epoch ms, and an empty
        text means absent (its default)."""
        data: dict[str, object] = {}
        for key, value in raw.items():
            name, stored = text(key), text(value)
            if name in cls.model_fields and stored != "":
                data[name] = stored
        for name in _TIMES & data.keys():
            data[name] = datetime.fromtimestamp(int(str(data[name])) / 1000, tz=UTC)
        return cls.model_validate(data)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES
