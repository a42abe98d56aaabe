"""The HTTP shapes: intake bodies, answers and webhook payloads (pydantic).

These models are the first line of validation (types, required and unknown
fields, lengths) and the source of the OpenAPI document (:mod:`service.openapi`),
so the document cannot drift from what is enforced. Semantic checks (is this a
valid phone number, is ``deliver_at`` in range) stay in the producer's
:class:`core.requests.RequestBuilder`, shared with every other entry point.
Field names are Connectus's.

The campaign shapes are in :mod:`service.campaign_schemas`, and the turning of
pydantic's errors into :class:`core.validation.InvalidInput` in
:mod:`service.schema_errors`: each is a concept of its own, and together they
were over the size guideline.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from core.models import State
from core.requests import ID_MAX_CHARS, SUBJECT_MAX_CHARS
from core.validation import EMAIL_MAX_CHARS, SMS_MAX_CHARS, WHATSAPP_MAX_CHARS, InvalidInput


def _whole_number(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer; bool stays bool and is refused by strict int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Characters a phone number may contain (what normalize_number accepts; it checks the rest).
PHONE_PATTERN = r"^\+?[0-9 ().-]{1,32}$"
Integer = Annotated[int, BeforeValidator(_whole_number)]
PhoneText = Annotated[str, Field(json_schema_extra={"pattern": PHONE_PATTERN})]
Phone = Annotated[
    PhoneText | Integer,
    Field(
        description="Phone number: E.164 with or without '+', or national (DEFAULT_REGION)",
        examples=["56987654321", "+56 9 8765 4321"],
    ),
]
SrcNumber = Annotated[
    PhoneText | Integer, Field(description="Origin number or short code", examples=["4374"])
]
Email = Annotated[
    str,
    Field(
        max_length=320,
        description="E-mail address",
        json_schema_extra={"format": "email"},
        examples=["ana@example.com"],
    ),
]
ClientId = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS)]
DeliverAt = Annotated[
    str,
    Field(
        max_length=64,
        description="When to send: ISO 8601 or 'YYYY-MM-DD HH:MM:SS' (DEFAULT_TIMEZONE if no "
        "offset); omit to send now",
        examples=["2030-01-15 09:00:00", "2030-01-15T12:00:00Z"],
    ),
]
MaxAge = Annotated[
    float,
    Field(
        gt=0,
        description="Never send it later than this many seconds after it is due (deliver_at, "
        "or now); fails as Expired instead. Default: MAX_MESSAGE_AGE_S, OTP_MAX_AGE_S for an "
        "OTP. Not with expires_at",
        examples=[300],
    ),
]
ExpiresAt = Annotated[
    str,
    Field(
        max_length=64,
        description="Never send it after this time (ISO 8601 with an offset, in the future, "
        "after deliver_at); fails as Expired instead. Not with max_age_s",
        examples=["2030-01-15T12:05:00Z"],
    ),
]
Priority = Annotated[
    Literal["transactional", "bulk"],
    Field(description="'bulk' = marketing: lower-priority queue, refused for opted-out numbers"),
]


class _Message(BaseModel):
    # strict: "123" is not silently an int; forbid: a misspelt field is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True)

    deliver_at: DeliverAt | None = None
    max_age_s: MaxAge | None = None
    expires_at: ExpiresAt | None = None


class SmsMessage(_Message):
    type: Literal["sms"]
    dst_number: Phone
    sms_content: Annotated[str, Field(max_length=SMS_MAX_CHARS)]
    src_number: SrcNumber | None = None
    id_client: ClientId | None = None
    id_delivery: ClientId | None = None
    priority: Priority = "transactional"


class OtpMessage(_Message):
    type: Literal["otp"]
    dst_number: Phone
    sms_content: Annotated[str, Field(max_length=SMS_MAX_CHARS)]
    src_number: SrcNumber | None = None
    priority: Annotated[
        Literal["transactional"], Field(description="OTPs always use the OTP queue")
    ] = "transactional"


class EmailMessage(_Message):
    type: Literal["email"]
    dst_email: Email
    subject: Annotated[str, Field(max_length=SUBJECT_MAX_CHARS)]
    email_content: Annotated[str, Field(max_length=EMAIL_MAX_CHARS, description="HTML")]
    src_email: Email | None = None
    id_client: ClientId | None = None
    id_delivery: ClientId | None = None
    priority: Priority = "transactional"


class OtpEmailMessage(_Message):
    type: Literal["otp_email"]
    dst_email: Email
    subject: Annotated[str, Field(max_length=SUBJECT_MAX_CHARS)]
    email_content: Annotated[str, Field(max_length=EMAIL_MAX_CHARS, description="HTML")]
    src_email: Email | None = None
    priority: Annotated[
        Literal["transactional"], Field(description="OTPs always use the OTP queue")
    ] = "transactional"


class WhatsappMessage(_Message):
    type: Literal["whatsapp"]
    dst_number: Phone
    whatsapp_content: Annotated[str, Field(max_length=WHATSAPP_MAX_CHARS)]
    src_number: SrcNumber
    id_client: ClientId | None = None
    id_delivery: ClientId | None = None
    priority: Priority = "transactional"


class WhatsappQrMessage(_Message):
    type: Literal["whatsapp_qr"]
    number: Phone
    message: Annotated[str, Field(max_length=WHATSAPP_MAX_CHARS)]
    priority: Priority = "transactional"


MessageRequest = Annotated[
    SmsMessage | OtpMessage | EmailMessage | OtpEmailMessage | WhatsappMessage | WhatsappQrMessage,
    Field(discriminator="type"),
]
MESSAGE_ADAPTER: TypeAdapter[MessageRequest] = TypeAdapter(MessageRequest)


class Accepted(BaseModel):
    """The answer to ``POST /v1/messages`` (202)."""

    job_id: str = Field(description="Use it with GET /v1/messages/{job_id}")
    state: State


class InvalidParam(BaseModel):
    name: str
    reason: str


class Problem(BaseModel):
    """RFC 7807 problem document."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    invalid_params: list[InvalidParam] | None = Field(default=None, alias="invalid-params")


# --- webhooks (Connectus -> us) ---------------------------------------------

ProviderId = Annotated[
    str | int,
    Field(description="Connectus's message id (id_sms)"),
]


class _Webhook(BaseModel):
    # Connectus may add fields: accept and ignore them rather than drop the event.
    model_config = ConfigDict(extra="ignore")


class SmsStatusWebhook(_Webhook):
    id_sms: ProviderId
    status: Annotated[
        str,
        Field(pattern=r"^[A-Z0-9_]{1,40}$", description="Platform status, e.g. ENTREGADO"),
    ]


class SmsIncomingWebhook(_Webhook):
    id_sms: ProviderId
    dst_number: Annotated[str | int, Field(description="Our number that received the SMS")]
    src_number: Annotated[str | int, Field(description="The sender")]
    src_provider: Annotated[str, Field(max_length=64)] | None = None
    sms_content: Annotated[str, Field(max_length=SMS_MAX_CHARS * 4)]
    sms_content_binary: Annotated[str, Field(max_length=SMS_MAX_CHARS * 8)] | None = None


class WebhookAck(BaseModel):
    result: Literal["recorded", "duplicate"]


def text_id(value: str | int, field: str) -> str:
    """A provider id or number as text: 1-64 of A-Z a-z 0-9 _ - (ints as digits)."""
    text = str(value).strip()
    if isinstance(value, bool) or not text or len(text) > 64:
        raise InvalidInput(field, "must be 1-64 characters")
    if not all(ch.isascii() and (ch.isalnum() or ch in "_-+") for ch in text):
        raise InvalidInput(field, "may only contain A-Z a-z 0-9 _ - +")
    return text
