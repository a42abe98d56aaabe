"""The HTTP shapes: intake bodies, answers and webhook payloads (pydantic).

These models are the first line of validation (types, required and unknown
fields, lengths) and the source of the OpenAPI document (:mod:`service.openapi`),
so the document cannot drift from what is enforced. Semantic checks (is this a
valid phone number, is ``deliver_at`` in range) stay in the producer's
:class:`core.requests.RequestBuilder`, shared with every other entry point.
Field names are Connectus's.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from core.models import State
from core.requests import ID_MAX_CHARS, SUBJECT_MAX_CHARS
from core.validation import (
    EMAIL_MAX_CHARS,
    SMS_MAX_CHARS,
    WHATSAPP_MAX_CHARS,
    FieldError,
    InvalidInput,
)


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
Priority = Annotated[
    Literal["transactional", "bulk"],
    Field(description="'bulk' = marketing: lower-priority queue, refused for opted-out numbers"),
]


class _Message(BaseModel):
    # strict: "123" is not silently an int; forbid: a misspelt field is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True)

    deliver_at: DeliverAt | None = None


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


# --- campaigns ---------------------------------------------------------------

#: Most recipients one ``POST /v1/campaigns`` may carry (the body limit,
#: INTAKE_MAX_BODY_BYTES, usually binds first); larger lists go through the
#: CLI or ``CampaignProducer``, which stream files of any size.
CAMPAIGN_MAX_RECIPIENTS = 100_000
#: Most columns in one recipient row, and the longest column name and value.
ROW_MAX_COLUMNS = 100
COLUMN_MAX_CHARS = 64
CELL_MAX_CHARS = 10_000
#: A campaign name (producers.campaign_plan.NAME_MAX_CHARS) and a template's size.
CAMPAIGN_NAME_MAX_CHARS = 200
TEMPLATE_MAX_CHARS = EMAIL_MAX_CHARS
#: max_lateness_s: at most a year (0 = no limit).
MAX_LATENESS_S = 366 * 86_400
CELL_REASON = "must be text, a number, true/false or null"


def _cell(value: Any) -> Any:
    # One error per bad value, worded for people (a 4-member union would give four).
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        if len(value) > CELL_MAX_CHARS:
            raise PydanticCustomError(
                "cell_too_long",
                "is too long: at most {limit} characters",
                {"limit": CELL_MAX_CHARS},
            )
        return value
    raise PydanticCustomError("cell_type", CELL_REASON)


Cell = Annotated[
    Any,
    PlainValidator(_cell),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": CELL_MAX_CHARS}, {"type": "number"},
                   {"type": "boolean"}, {"type": "null"}]}
    ),
]  # fmt: skip
ColumnName = Annotated[str, Field(min_length=1, max_length=COLUMN_MAX_CHARS)]
RecipientRow = Annotated[
    dict[ColumnName, Cell],
    Field(
        min_length=1,
        max_length=ROW_MAX_COLUMNS,
        description="One recipient: dst_number (sms, whatsapp) or dst_email (email), plus the "
        "template's fields. null = the column is absent from this row",
        examples=[{"dst_number": "56987654321", "name": "Ana"}],
    ),
]


class CampaignRequest(BaseModel):
    """The body of ``POST /v1/campaigns``: a template and its recipients."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, Field(min_length=1, max_length=CAMPAIGN_NAME_MAX_CHARS)]
    kind: Literal["sms", "email", "whatsapp"]
    text: Annotated[
        str,
        Field(
            max_length=TEMPLATE_MAX_CHARS,
            description="Template: {field} is a recipient column, {{ and }} literal braces",
            examples=["Hola {name}, tu pedido llegó"],
        ),
    ]
    subject: (
        Annotated[
            str,
            Field(max_length=SUBJECT_MAX_CHARS, description="E-mail subject (required for email)"),
        ]
        | None
    ) = None
    src: Annotated[
        str | Integer,
        Field(description="Origin: src_number (WhatsApp, required) or src_email (e-mail; "
              "defaults to CONNECTUS_DEFAULT_SRC_EMAIL)"),
    ] | None = None  # fmt: skip
    id_client: (
        Annotated[
            str,
            Field(min_length=1, max_length=ID_MAX_CHARS, description="Charge this subclient (v3)"),
        ]
        | None
    ) = None
    deliver_at: DeliverAt | None = None
    window: (
        Annotated[
            str,
            Field(
                max_length=16, description="Daily send window, local time", examples=["09:00-21:00"]
            ),
        ]
        | None
    ) = None
    max_lateness_s: Annotated[
        int,
        # The bounds before the validator: the JSON schema then says minimum/maximum.
        Field(ge=0, le=MAX_LATENESS_S),
        BeforeValidator(_whole_number),
        Field(
            description="Seconds after deliver_at it may still start (0 = no limit); default "
            "CAMPAIGN_MAX_LATENESS_S"
        ),
    ] | None = None  # fmt: skip
    transport: (
        Annotated[
            Literal["v3", "v1_bulk"],
            Field(description="SMS: v1_bulk (default) or v3; e-mail and WhatsApp: v3"),
        ]
        | None
    ) = None
    skip_invalid: Annotated[
        bool, Field(description="Leave invalid rows out (reported) instead of refusing")
    ] = False
    force: Annotated[bool, Field(description="Send even if the cost exceeds the balance")] = False
    recipients: Annotated[
        list[RecipientRow], Field(min_length=1, max_length=CAMPAIGN_MAX_RECIPIENTS)
    ]


class InvalidRowOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int = Field(description="Position in recipients, from 1")
    field: str
    reason: str


class DuplicateRowOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int
    first_line: int = Field(description="The earlier row kept for the same recipient")


class BalanceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    available: int | None


class CampaignPlanSummary(BaseModel):
    """A campaign's preflight: counts, cost and schedule
    (``producers.campaign_plan.CampaignPlan.to_json``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["sms", "email", "whatsapp"]
    transport: Literal["v3", "v1_bulk"]
    rows: int
    valid: int
    invalid: int
    duplicates: int
    opted_out: int = Field(description="valid rows dropped: the number opted out (STOP)")
    segments: int
    max_segments: int
    cost: int
    segments_by_country: dict[str, int]
    balances: list[BalanceOut]
    deliver_at: str
    timezone: str
    window: str | None
    max_lateness_s: int
    duplicate_rows: list[DuplicateRowOut]


class CampaignPlanOut(CampaignPlanSummary):
    """The whole preflight, with the invalid rows and the reasons it would be refused."""

    invalid_rows: list[InvalidRowOut]
    refusals: list[str]


class CampaignAccepted(BaseModel):
    """The answer to ``POST /v1/campaigns`` (202)."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str = Field(description="Use it with GET /v1/campaigns/{campaign_id}")
    created: bool = Field(description="false: the idempotency key named an existing campaign")
    plan: CampaignPlanOut


class CampaignStatusOut(BaseModel):
    """A campaign's state and progress (``producers.campaign_control.CampaignStatus.to_json``)."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    name: str
    kind: Literal["sms", "email", "whatsapp"]
    transport: Literal["v3", "v1_bulk"]
    state: Literal["scheduled", "running", "window", "paused", "late", "finished", "cancelled"]
    reason: str | None = Field(description="Why it is paused, if it is")
    total: int
    released: int = Field(description="Recipients whose jobs exist")
    counts: dict[str, int] = Field(
        description="Recipients by job state; pending = not released yet"
    )
    parked: int
    deliveries: int = Field(description="Connectus deliveries (v1 bulks) so far")
    segments: int
    deliver_at_ms: int
    window: str | None
    timezone: str
    started_ms: int | None
    finished_ms: int | None
    rate_per_s: float | None
    eta_s: float | None


class CampaignProblem(BaseModel):
    """RFC 7807 problem for ``POST /v1/campaigns``: a refused campaign adds ``refusals``,
    ``invalid_rows`` (line = position in recipients, from 1) and ``plan``."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    invalid_params: list[InvalidParam] | None = Field(default=None, alias="invalid-params")
    refusals: list[str] | None = None
    invalid_rows: list[InvalidRowOut] | None = None
    plan: CampaignPlanSummary | None = None


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


def invalid_from_pydantic(exc: ValidationError, *, tagged: bool = False) -> InvalidInput:
    """One :class:`InvalidInput` naming every field pydantic rejected.

    ``tagged``: the model is a discriminated union, whose error locations
    start with the tag (``("sms", "dst_number")``); the tag is dropped.
    """
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc: list[Any] = list(error["loc"])
        if tagged and loc:
            loc = loc[1:]
        if error["type"] in {"union_tag_not_found", "union_tag_invalid"} or (tagged and not loc):
            name = "type"
            reason = "must be one of sms, otp, email, otp_email, whatsapp, whatsapp_qr"
        else:
            reason = _REASONS.get(error["type"], str(error["msg"]))
            if loc and _UNION_MEMBER.match(str(loc[-1])):
                # A str | int field: pydantic reports once per member, at "field.str".
                loc = loc[:-1]
                reason = "must be a string or an integer"
            name = ".".join(str(part) for part in loc) or "body"
        errors.append(FieldError(name, reason))
    # Several union members may fail for the same field: keep one line per field.
    unique = list({(e.field, e.reason): e for e in errors}.values())
    return InvalidInput.from_errors(unique)


# How pydantic names the member of a str | int union in an error location.
_UNION_MEMBER = re.compile(r"^(str|int|function-[a-z]+\[.*\])$")
_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this message type",
    "string_type": "must be a string",
    "int_type": "must be an integer",
}


_CAMPAIGN_REASONS = {
    **_REASONS,
    "extra_forbidden": "is not a field of a campaign",
    "dict_type": "must be an object (column: value)",
    "list_type": "must be an array of recipient objects",
    "bool_type": "must be true or false",
    "string_too_short": "is empty",
}


def invalid_campaign_from_pydantic(exc: ValidationError) -> InvalidInput:
    """Like :func:`invalid_from_pydantic`, for :class:`CampaignRequest`.

    A recipient's fields are named ``recipients.<index>.<column>``, the index
    from 0 as in JSON (``invalid_rows`` in a refusal count lines from 1).
    """
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc: list[Any] = list(error["loc"])
        reason = _CAMPAIGN_REASONS.get(error["type"], str(error["msg"]))
        if error["type"] == "literal_error":
            reason = "must be " + str(error["ctx"]["expected"])
        if loc and loc[-1] == "[key]":
            # A bad column name: ("recipients", i, name, "[key]") -> the row.
            loc = loc[:-2]
            reason = f"has a column name that is empty or longer than {COLUMN_MAX_CHARS} characters"
        elif loc and loc[0] != "recipients" and _UNION_MEMBER.match(str(loc[-1])):
            loc = loc[:-1]
            reason = "must be a string or an integer"
        errors.append(FieldError(".".join(str(part) for part in loc) or "body", reason))
    unique = list({(e.field, e.reason): e for e in errors}.values())
    return InvalidInput.from_errors(unique)
