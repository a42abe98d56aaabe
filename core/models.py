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
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from config.tenants import DEFAULT_TENANT


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
    def is_otp(self) -> bool:
        return self in (Kind.OTP, Kind.OTP_EMAIL)

    @property
    def content_field(self) -> str:
        """The Connectus field that carries the message body."""
        return _CONTENT_FIELD[self]


_CONTENT_FIELD = {
    Kind.SMS: "sms_content",
    Kind.OTP: "sms_content",
    Kind.EMAIL: "email_content",
    Kind.OTP_EMAIL: "email_content",
    Kind.WHATSAPP: "whatsapp_content",
    Kind.WHATSAPP_QR: "message",
    Kind.WHATSAPP_QR_GROUP: "message",
}


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


class JobRecord(BaseModel):
    """A job's record as stored in Redis (``{prefix}:job:{id}``), with a TTL.

    Personal data is kept masked (``dst``) and OTP content only as a keyed
    digest (``content_hmac``, :func:`core.hashing.content_digest`), which no
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
        """Build from an ``HGETALL`` answer; times are stored as epoch ms."""
        fields = {_text(k): _text(v) for k, v in raw.items()}
        data: dict[str, object] = {
            name: value for name, value in fields.items() if name in cls.model_fields
        }
        times = ("created_at", "updated_at", "deliver_at", "expires_at", "next_attempt_at",
                 "sent_at", "delivery_status_at")  # fmt: skip
        for name in times:
            if fields.get(name):
                data[name] = datetime.fromtimestamp(int(fields[name]) / 1000, tz=UTC)
            else:
                data.pop(name, None)
        optional = ("provider_id", "provider_id_lookup", "outcome", "error_class", "last_error",
                    "correlation_id", "delivery_status", "campaign", "account")  # fmt: skip
        if not data.get("tenant"):
            data.pop("tenant", None)
        for name in optional:
            if data.get(name) == "":
                data[name] = None
        return cls.model_validate(data)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
