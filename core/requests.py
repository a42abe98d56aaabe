"""Send requests: one pydantic model per kind, a union told apart by ``type``.

The one validation of a message, shared by the producers (and so the CLI) and
the HTTP intake: :func:`parse_request` checks every field, with
``phonenumbers`` and ``email-validator`` inside the validators, and reports
all bad fields at once as :class:`core.validation.InvalidInput` (the same
``FieldError(field, reason)`` whichever door the request came in by). The
same models are the ``MessageRequest`` schema of the OpenAPI document.

Field names follow Connectus's (``dst_number``, ``sms_content``,
``dst_email``, ``whatsapp_content``...). Validators that depend on the
deployment (``DEFAULT_REGION``, ``DEFAULT_TIMEZONE``, ``JOB_TTL_S``,
``CONNECTUS_DEFAULT_SRC_EMAIL``, ``CONNECTUS_WHATSAPP_SRC_NUMBER``) read the
:class:`config.Settings` and the clock from the validation context, so
validation needs :func:`parse_request`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from config import Settings
from core.countries import connectus_country
from core.deliver_at import parse_deliver_at
from core.hashing import fingerprint
from core.models import Kind
from core.redaction import mask_email, mask_phone
from core.validation import (
    EMAIL_MAX_CHARS,
    SMS_MAX_CHARS,
    WHATSAPP_MAX_CHARS,
    InvalidInput,
    check_content,
    check_max_age_s,
    check_single_line,
    invalid_from_pydantic,
    normalize_email,
    normalize_number,
    parse_expires_at,
    sms_segments,
)

SUBJECT_MAX_CHARS = 998  # RFC 5322 line limit
#: WhatsApp's limit for a group's name (its "subject").
GROUP_NAME_MAX_CHARS = 100
ID_MAX_CHARS = 64
#: Characters a phone number may contain (normalize_number checks the rest).
PHONE_PATTERN = r"^\+?[0-9 ().-]{1,32}$"
#: Fields that are ours, not Connectus's: never part of the payload.
_OURS = {"type", "deliver_at", "max_age_s", "expires_at", "priority", "account"}


def _context(info: ValidationInfo) -> tuple[Settings, datetime]:
    context = info.context or {}
    return context["settings"], context.get("now") or datetime.now(UTC)


def check_account(value: Any, settings: Settings, tenant: str) -> str:
    """``value`` if ``tenant`` may send through that Connectus account, else
    :class:`InvalidInput` naming ``account`` (no other account is named: tenants
    do not learn each other's)."""
    if not isinstance(value, str) or value not in settings.tenant_account_names(tenant):
        raise InvalidInput("account", "is not a Connectus account you can send through")
    return value


def _account(value: Any, info: ValidationInfo) -> str:
    return check_account(value, _context(info)[0], (info.context or {}).get("tenant", "default"))


def _field(check: Callable[[Any, ValidationInfo], Any]) -> Callable[[Any, ValidationInfo], Any]:
    """A validator from a check that raises InvalidInput: its reason, as pydantic's error."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, info)
        except InvalidInput as exc:
            raise PydanticCustomError("invalid", "{reason}", {"reason": exc.reason}) from exc

    return validate


def _phone(value: Any, info: ValidationInfo) -> str:
    region = _context(info)[0].default_region
    return normalize_number(value, default_region=region)


def _src_number(value: Any, info: ValidationInfo) -> str:
    """A source number: a full number, or a short code (3 to 8 digits) like ``4374``."""
    if value is None:
        raise InvalidInput("src_number", "is required: the WhatsApp origin number assigned "
                                         "to the account")  # fmt: skip
    text = str(value).strip()
    if isinstance(value, str | int) and text.isdigit() and 3 <= len(text) <= 8:
        return text
    return _phone(value, info)


def _whatsapp_src_number(value: Any, info: ValidationInfo) -> str:
    """WhatsApp's origin: the one given, else ``CONNECTUS_WHATSAPP_SRC_NUMBER``."""
    if value is None:
        value = _context(info)[0].connectus_whatsapp_src_number
    if value is None:
        raise InvalidInput("src_number", "is required: the WhatsApp origin number assigned "
                                         "to the account (or set "
                                         "CONNECTUS_WHATSAPP_SRC_NUMBER)")  # fmt: skip
    return _src_number(value, info)


def _src_email(value: Any, info: ValidationInfo) -> str:
    value = value or _context(info)[0].connectus_default_src_email
    if value is None:
        raise InvalidInput("src_email", "is required (or set CONNECTUS_DEFAULT_SRC_EMAIL)")
    return normalize_email(value)


def _client_id(value: Any, _: ValidationInfo) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX_CHARS:
        raise InvalidInput("id", f"must be a non-empty string of at most {ID_MAX_CHARS} characters")
    return value.strip()


def _deliver_at(value: Any, info: ValidationInfo) -> datetime | None:
    settings, now = _context(info)
    when = parse_deliver_at(value, tz=settings.default_timezone, now=now)
    if when is not None and when > now + timedelta(seconds=settings.job_ttl_s * 0.9):
        raise InvalidInput("deliver_at", "is later than the job records live (JOB_TTL_S)")
    return when


def _max_age_s(value: Any, info: ValidationInfo) -> float:
    age = check_max_age_s(value)
    horizon_s = _context(info)[0].job_ttl_s * 0.9
    if age > horizon_s:
        raise InvalidInput("max_age_s", f"is longer than the job records live "
                                        f"({horizon_s:.0f} s, 0.9 x JOB_TTL_S)")  # fmt: skip
    return age


def _checked(check: Callable[[Any, ValidationInfo], Any], schema: Any) -> Any:
    """Validate with ``check``; document the JSON input as ``schema``."""
    return PlainValidator(_field(check), json_schema_input_type=schema)


def _content(max_chars: int, *, single_line: bool = False) -> Any:
    def check(value: Any, _: ValidationInfo) -> str:
        if single_line:  # a header-like value: CR/LF would inject headers
            return check_single_line(value, field="content", max_chars=max_chars)
        return check_content(value, field="content", max_chars=max_chars)

    return _checked(check, Annotated[str, Field(max_length=max_chars)])


_PhoneInput = Annotated[str, Field(pattern=PHONE_PATTERN)] | int
Phone = Annotated[
    str,
    _checked(_phone, _PhoneInput),
    Field(description="Phone number: E.164 with or without '+', or national (DEFAULT_REGION)",
          examples=["56987654321", "+56 9 8765 4321"]),
]  # fmt: skip
SrcNumber = Annotated[
    str, _checked(_src_number, _PhoneInput),
    Field(description="Origin number or short code", examples=["4374"]),
]  # fmt: skip
_EmailInput = Annotated[str, Field(max_length=320, json_schema_extra={"format": "email"})]
Email = Annotated[
    str,
    _checked(lambda value, _: normalize_email(value), _EmailInput),
    Field(description="E-mail address", examples=["ana@example.com"]),
]
WhatsappSrcNumber = Annotated[
    str, _checked(_whatsapp_src_number, _PhoneInput | None),
    Field(description="The account's WhatsApp origin number; default "
          "CONNECTUS_WHATSAPP_SRC_NUMBER", examples=["56911111111"]),
]  # fmt: skip
SrcEmail = Annotated[
    str,
    _checked(_src_email, _EmailInput | None),
    Field(description="Origin address; default CONNECTUS_DEFAULT_SRC_EMAIL"),
]
ClientId = Annotated[
    str, _checked(_client_id, Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS)])
]
DeliverAt = Annotated[
    datetime | None,
    _checked(_deliver_at, Annotated[str, Field(max_length=64)] | None),
    Field(description="When to send: ISO 8601 or 'YYYY-MM-DD HH:MM:SS' (DEFAULT_TIMEZONE if "
          "no offset); omit to send now", examples=["2030-01-15 09:00:00"]),
]  # fmt: skip
MaxAge = Annotated[
    float,
    _checked(_max_age_s, Annotated[float, Field(gt=0)]),
    Field(description="Never send it later than this many seconds after it is due (deliver_at, "
          "or now); fails as Expired instead. Default: MAX_MESSAGE_AGE_S, OTP_MAX_AGE_S for an "
          "OTP. Not with expires_at", examples=[300]),
]  # fmt: skip
AccountName = Annotated[
    str,
    _checked(_account, Annotated[str, Field(max_length=32)]),
    Field(description="The Connectus account that sends it (CONNECTUS_ACCOUNTS); default: the "
          "tenant's (TENANT_ACCOUNTS), else the first", examples=["default"]),
]  # fmt: skip
ExpiresAt = Annotated[
    datetime,
    _checked(lambda value, info: parse_expires_at(value, now=_context(info)[1]),
             Annotated[str, Field(max_length=64)]),
    Field(description="Never send it after this time (ISO 8601 with an offset, in the future, "
          "after deliver_at); fails as Expired instead. Not with max_age_s",
          examples=["2030-01-15T12:05:00Z"]),
]  # fmt: skip
Priority = Annotated[
    Literal["transactional", "bulk"],
    Field(description="'bulk' = marketing: lower-priority queue, refused for opted-out numbers"),
]
OtpPriority = Annotated[
    Literal["transactional"], Field(description="OTPs always use the OTP queue")
]


class _Send(BaseModel):
    """What every kind shares: when, how long it may wait, and the derived views."""

    # strict: "123" is not silently an int; forbid: a misspelt field is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    _dst_field: ClassVar[str] = "dst_number"

    deliver_at: DeliverAt = None
    max_age_s: MaxAge | None = None
    expires_at: ExpiresAt | None = None
    account: AccountName | None = None

    @model_validator(mode="after")
    def _limits(self, info: ValidationInfo) -> _Send:
        """At most one limit, after ``deliver_at``, within the records' life."""
        if self.expires_at is None:
            return self
        field = {"field": "expires_at"}
        if self.max_age_s is not None:
            raise PydanticCustomError("invalid", "give max_age_s or expires_at, not both", field)
        settings, now = _context(info)
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
        if self.kind is Kind.OTP:
            fields["save_content"] = "hash"  # ask Connectus to keep only a hash of the code
        return fields

    @property
    def dst(self) -> str:
        """The destination: a normalised number or address."""
        return str(getattr(self, self._dst_field))

    @property
    def masked_dst(self) -> str:
        """The destination as the job record keeps it: a number or address masked."""
        dst = self.dst
        return mask_email(dst) if "@" in dst else mask_phone(dst)

    @property
    def segments(self) -> int | None:
        """SMS that Connectus charges (None for kinds not counted in SMS)."""
        content = getattr(self, "sms_content", None)
        return sms_segments(content) if content is not None else None

    def fingerprint(self, key: bytes) -> str:
        """What makes two submissions "the same request" for idempotency (keyed by ``key``).

        The limit as given (``max_age_s`` relative, not the instant it works out
        to), so that a retried submission is the same request; absent, the
        fingerprint is what it was before limits existed.
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


SmsContent = Annotated[str, _content(SMS_MAX_CHARS)]
Subject = Annotated[str, _content(SUBJECT_MAX_CHARS, single_line=True)]
EmailContent = Annotated[str, _content(EMAIL_MAX_CHARS), Field(description="HTML")]
WhatsappContent = Annotated[str, _content(WHATSAPP_MAX_CHARS)]


class SmsMessage(_Send):
    type: Literal["sms"]
    dst_number: Phone
    sms_content: SmsContent
    src_number: SrcNumber | None = None
    id_client: ClientId | None = None
    id_delivery: ClientId | None = None
    priority: Priority = "transactional"

    @model_validator(mode="after")
    def _subclient_country(self) -> SmsMessage:
        """A subclient's SMS balance is per country (the client sends ``id_country``, from
        the number): a number of no Connectus country can't be charged to one."""
        if self.id_client is not None and connectus_country(self.dst_number) is None:
            raise PydanticCustomError(
                "invalid", "is in none of Connectus's countries, so it can't be charged to "
                "a subclient (id_client): SMS balance is per destination country",
                {"field": "dst_number"},
            )  # fmt: skip
        return self


class OtpMessage(_Send):
    type: Literal["otp"]
    dst_number: Phone
    sms_content: SmsContent
    src_number: SrcNumber | None = None
    priority: OtpPriority = "transactional"


class EmailMessage(_Send):
    _dst_field = "dst_email"
    type: Literal["email"]
    dst_email: Email
    src_email: SrcEmail = Field(default=None, validate_default=True)
    subject: Subject
    email_content: EmailContent
    id_client: ClientId | None = None
    id_delivery: ClientId | None = None
    priority: Priority = "transactional"


class OtpEmailMessage(_Send):
    _dst_field = "dst_email"
    type: Literal["otp_email"]
    dst_email: Email
    src_email: SrcEmail = Field(default=None, validate_default=True)
    subject: Subject
    email_content: EmailContent
    priority: OtpPriority = "transactional"


class WhatsappMessage(_Send):
    type: Literal["whatsapp"]
    # Checked when absent too: CONNECTUS_WHATSAPP_SRC_NUMBER fills it, else every
    # door gets the same reason.
    src_number: WhatsappSrcNumber = Field(default=None, validate_default=True)
    dst_number: Phone
    whatsapp_content: WhatsappContent
    id_client: ClientId | None = None
    id_delivery: ClientId | None = None
    priority: Priority = "transactional"


class WhatsappQrMessage(_Send):
    _dst_field = "number"
    type: Literal["whatsapp_qr"]
    number: Phone
    message: WhatsappContent
    priority: Priority = "transactional"


GroupName = Annotated[
    str,
    _content(GROUP_NAME_MAX_CHARS, single_line=True),
    Field(description="The group's name (the QR API's groupName), as created",
          examples=["Equipo ventas"]),
]  # fmt: skip


class WhatsappQrGroupMessage(_Send):
    """A message to a WhatsApp group through the QR API (``send-message-to-group``).

    ``group_name`` is sent as Connectus's ``groupName``. A group has no number,
    so opt-outs (which are per number) never refuse it; ``priority="bulk"`` only
    picks the queue.
    """

    _dst_field = "group_name"
    type: Literal["whatsapp_qr_group"]
    group_name: GroupName
    message: WhatsappContent
    priority: Priority = "transactional"

    @property
    def masked_dst(self) -> str:
        # A group's name is not a person's number or address: kept readable,
        # marked so that no one takes it for a number.
        return f"group:{self.group_name}"


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

    ``data``: a JSON body, or a producer's arguments (None = absent for
    optional fields). ``now``: the clock, for tests. ``tenant``: who sends it
    (the accounts it may name).
    """
    context = {"settings": settings, "now": now, "tenant": tenant}
    try:
        return MESSAGE_ADAPTER.validate_python(data, context=context)
    except ValidationError as exc:
        raise invalid_from_pydantic(exc, tagged=True) from exc
