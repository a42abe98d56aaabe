"""Send requests: one pydantic model per kind, a union told apart by ``type``.

The one validation of a message, shared by the producers (so the CLI) and the HTTP
intake, and the ``MessageRequest`` schema of the OpenAPI document:
:func:`parse_request` reports every bad field at once as
:class:`domain.validation.InvalidInput`. Field names are Connectus's; their types and
checks are in :mod:`domain.request_fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connectus_worker.config import Settings
from connectus_worker.domain.countries import NO_SUBCLIENT_COUNTRY, connectus_country
from connectus_worker.domain.hashing import fingerprint
from connectus_worker.domain.models import Kind
from connectus_worker.domain.request_fields import (
    AccountName,
    ClientId,
    DeliverAt,
    Email,
    EmailContent,
    ExpiresAt,
    GroupName,
    MaxAge,
    OtpPriority,
    Phone,
    Priority,
    SmsContent,
    SrcEmail,
    SrcNumber,
    Subject,
    WhatsappContent,
    WhatsappSrcNumber,
    context_of,
)
from connectus_worker.domain.validation import invalid_from_pydantic, sms_segments
from connectus_worker.logging.redaction import mask_email, mask_phone

#: Fields that are ours, not Connectus's: never part of the payload.
_OURS = {"type", "deliver_at", "max_age_s", "expires_at", "priority", "account"}


class _Send(BaseModel):
    """What every kind shares: when, how long it may wait, and the derived views."""

    # strict: "123" is not silently an int; forbid: a misspelt field is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    deliver_at: DeliverAt = None
    max_age_s: MaxAge = None
    expires_at: ExpiresAt = None
    account: AccountName = None
    priority: Priority = "transactional"

    @model_validator(mode="after")
    def _limits(self, info: ValidationInfo) -> _Send:
        """At most one limit, after ``deliver_at``, within the records' life."""
        if self.expires_at is None:
            return self
        field = {"field": "expires_at"}
        if self.max_age_s is not None:
            raise PydanticCustomError("invalid", "give max_age_s or expires_at, not both", field)
        settings, now = context_of(info)
        horizon_s = settings.job_ttl_s * 0.9
        if self.deliver_at is not None and self.expires_at <= self.deliver_at:
            raise PydanticCustomError("invalid", "is not after deliver_at: the message would "
                                      "expire before it is due", field)  # fmt: skip
        if self.expires_at > (self.deliver_at or now) + timedelta(seconds=horizon_s):
            raise PydanticCustomError("invalid", "is more than the job records live after it "
                                      "is due ({horizon} s, 0.9 x JOB_TTL_S)",
                                      {**field, "horizon": f"{horizon_s:.0f}"})  # fmt: skip
        return self

    @property
    def kind(self) -> Kind:
        return Kind(getattr(self, "type"))  # noqa: B009 - every kind declares its tag

    @property
    def payload(self) -> dict[str, Any]:
        """Connectus's fields (absent ones left out)."""
        fields = self.model_dump(exclude=_OURS, exclude_none=True)
        if self.kind is Kind.OTP:  # save_content is send_otp's own field (send_otp_email has none)
            fields["save_content"] = "hash"  # ask Connectus to keep only a hash of the code
        return fields

    @property
    def dst(self) -> str:
        """The destination: a normalised number, address or group name."""
        return str(getattr(self, self.kind.spec.dst_field))

    @property
    def masked_dst(self) -> str:
        """The destination as the job record keeps it: a number or address masked; a
        group's name (no person's) readable, marked so that no one takes it for a number."""
        if not self.kind.spec.person:
            return f"group:{self.dst}"
        return mask_email(self.dst) if self.kind.spec.email else mask_phone(self.dst)

    @property
    def segments(self) -> int | None:
        """SMS that Connectus charges (None for kinds not counted in SMS)."""
        spec = self.kind.spec
        return sms_segments(getattr(self, spec.content_field)) if spec.segmented else None

    def fingerprint(self, key: bytes) -> str:
        """What makes two submissions "the same request" for idempotency (keyed by ``key``).

        The limit as given (``max_age_s``, not the instant it works out to): a retried
        submission is the same request. Absent fields leave the fingerprint unchanged.
        """
        deliver_at = self.deliver_at.isoformat() if self.deliver_at else None
        shape: dict[str, Any] = {"kind": self.kind.value, "payload": self.payload, "at": deliver_at}
        if self.max_age_s is not None:
            shape["max_age_s"] = self.max_age_s
        if self.expires_at is not None:
            shape["expires_at"] = self.expires_at.isoformat()
        if self.account is not None:
            shape["account"] = self.account
        return fingerprint(shape, key=key)

    def expires_ms(self, now_ms: int) -> int | None:
        """The job's own expiry (epoch ms): ``max_age_s`` after it is due, or ``expires_at``."""
        if self.expires_at is not None:
            return int(self.expires_at.timestamp() * 1000)
        if self.max_age_s is None:
            return None
        due = int(self.deliver_at.timestamp() * 1000) if self.deliver_at else now_ms
        return due + int(self.max_age_s * 1000)


class _Billed(_Send):
    """A kind a subclient (``id_client``) can be charged for, with its own delivery id."""

    id_client: ClientId | None = Field(None, description="Connectus subclient id (id_client)")
    id_delivery: ClientId | None = Field(None, description="Connectus delivery id (id_delivery)")


class _Sms(_Send):
    dst_number: Phone
    sms_content: SmsContent
    src_number: SrcNumber = None


class SmsMessage(_Sms, _Billed):
    type: Literal["sms"]

    @model_validator(mode="after")
    def _subclient_country(self) -> SmsMessage:
        """A subclient's SMS balance is per country (the client sends ``id_country``, from
        the number): a number of no Connectus country can't be charged to one."""
        if self.id_client is not None and connectus_country(self.dst_number) is None:
            reason = f"is {NO_SUBCLIENT_COUNTRY}"
            raise PydanticCustomError("invalid", reason, {"field": "dst_number"})
        return self


class OtpMessage(_Sms):
    type: Literal["otp"]
    priority: OtpPriority = "transactional"


class _Email(_Send):
    dst_email: Email
    src_email: SrcEmail = Field(default=None, validate_default=True)
    subject: Subject
    email_content: EmailContent


class EmailMessage(_Email, _Billed):
    type: Literal["email"]


class OtpEmailMessage(_Email):
    type: Literal["otp_email"]
    priority: OtpPriority = "transactional"


class WhatsappMessage(_Billed):
    type: Literal["whatsapp"]
    # Checked when absent too: CONNECTUS_WHATSAPP_SRC_NUMBER fills it, else every
    # door gets the same reason.
    src_number: WhatsappSrcNumber = Field(default=None, validate_default=True)
    dst_number: Phone
    whatsapp_content: WhatsappContent


class WhatsappQrMessage(_Send):
    type: Literal["whatsapp_qr"]
    number: Phone
    message: WhatsappContent


class WhatsappQrGroupMessage(_Send):
    """A message to a WhatsApp group (``send-message-to-group``, ``groupName``). A group
    has no number: opt-outs never refuse it; ``priority="bulk"`` only picks the queue."""

    type: Literal["whatsapp_qr_group"]
    group_name: GroupName
    message: WhatsappContent


SendRequest = (
    SmsMessage
    | OtpMessage
    | EmailMessage
    | OtpEmailMessage
    | WhatsappMessage
    | WhatsappQrMessage
    | WhatsappQrGroupMessage
)
MessageRequest = Annotated[SendRequest, Field(discriminator="type")]
MESSAGE_ADAPTER: TypeAdapter[SendRequest] = TypeAdapter(MessageRequest)


def parse_request(
    data: Mapping[str, Any], settings: Settings, *, now: datetime | None = None,
    tenant: str = "default",
) -> SendRequest:  # fmt: skip
    """The validated request; raises :class:`InvalidInput` naming every bad field.

    ``data``: a JSON body or a producer's arguments (None = absent). ``tenant``: who
    sends it (the accounts it may name).
    """
    context = {"settings": settings, "now": now, "tenant": tenant}
    try:
        return MESSAGE_ADAPTER.validate_python(data, context=context)
    except ValidationError as exc:
        raise invalid_from_pydantic(exc, tagged=True) from exc
