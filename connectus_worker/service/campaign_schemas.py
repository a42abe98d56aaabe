"""The HTTP shapes of campaigns: ``POST /v1/campaigns`` and its answers (pydantic).

These models validate the body's shape and are the source of the OpenAPI
document; the semantic checks are the campaign planner's
(:func:`producers.campaign_plan.resolve`), shared with the CLI. The field types
both share (``Integer``, ``DeliverAt``) are in :mod:`service.schemas`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from connectus_worker.domain.request_fields import ID_MAX_CHARS, SUBJECT_MAX_CHARS
from connectus_worker.domain.validation import (
    EMAIL_MAX_CHARS,
    REASONS,
    UNION_MEMBER,
    FieldError,
    InvalidInput,
)

# _whole_number keeps its private name: pydantic puts a validator's name in
# error locations ("function-before[_whole_number(), int]").
from connectus_worker.service.schemas import DeliverAt, Integer, Problem, _whole_number

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
        Field(description="Origin: src_number (WhatsApp; defaults to "
              "CONNECTUS_WHATSAPP_SRC_NUMBER) or src_email (e-mail; defaults to "
              "CONNECTUS_DEFAULT_SRC_EMAIL)"),
    ] | None = None  # fmt: skip
    id_client: (
        Annotated[
            str,
            Field(min_length=1, max_length=ID_MAX_CHARS, description="Charge this subclient (v3)"),
        ]
        | None
    ) = None
    deliver_at: DeliverAt | None = None
    account: (
        Annotated[
            str,
            Field(
                max_length=32,
                description="The Connectus account that sends it "
                "(CONNECTUS_ACCOUNTS); default: the tenant's, else the first",
            ),
        ]
        | None
    ) = None
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
    connectus_delivery: Annotated[
        bool | None,
        Field(description="v3: each released chunk in a Connectus delivery of its own "
              "(default: off, docs/campaigns.md)"),
    ] = None  # fmt: skip
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
    deliveries: int = Field(description="Connectus deliveries (v1 bulks, v3 chunks) so far")
    segments: int
    deliver_at_ms: int
    window: str | None
    timezone: str
    started_ms: int | None
    finished_ms: int | None
    rate_per_s: float | None
    eta_s: float | None


class CampaignProblem(Problem):
    """RFC 7807 problem for ``POST /v1/campaigns``: a refused campaign adds ``refusals``,
    ``invalid_rows`` (line = position in recipients, from 1) and ``plan``."""

    refusals: list[str] | None = None
    invalid_rows: list[InvalidRowOut] | None = None
    plan: CampaignPlanSummary | None = None


_CAMPAIGN_REASONS = {
    **REASONS,
    "extra_forbidden": "is not a field of a campaign",
    "dict_type": "must be an object (column: value)",
    "list_type": "must be an array of recipient objects",
    "bool_type": "must be true or false",
    "string_too_short": "is empty",
}


def invalid_campaign(exc: ValidationError) -> InvalidInput:
    """pydantic's errors for :class:`CampaignRequest`, one per field, worded for people.

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
        elif loc and loc[0] != "recipients" and UNION_MEMBER.match(str(loc[-1])):
            loc, reason = loc[:-1], "must be a string or an integer"
        errors.append(FieldError(".".join(str(part) for part in loc) or "body", reason))
    return InvalidInput.from_errors(list(dict.fromkeys(errors)))
