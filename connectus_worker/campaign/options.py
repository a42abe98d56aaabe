"""A campaign's options: one pydantic model, read by every door.

:class:`CampaignFields` holds the rules of each option's shape (type, length,
range, the kinds and transports a campaign may use); the HTTP body
(``service.campaign_schemas.CampaignRequest``) extends it with the recipients,
the producers and the CLI with the idempotency key (:class:`CampaignOptions`).
The checks that need the settings or other options (template, sender, schedule,
account) are the planner's (``producers.campaign_plan.resolve``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connectus_worker.campaign.model import Transport
from connectus_worker.domain.models import EMAIL_MAX_CHARS, Kind
from connectus_worker.domain.request_fields import ID_MAX_CHARS, SUBJECT_MAX_CHARS
from connectus_worker.domain.validation import (
    REASONS,
    FieldError,
    InvalidInput,
    invalid_from_pydantic,
)

NAME_MAX_CHARS = 200
TEMPLATE_MAX_CHARS = EMAIL_MAX_CHARS
#: max_lateness_s: at most a year (0 = no limit).
MAX_LATENESS_S = 366 * 86_400
#: The longest column name of a recipient row (HTTP; named in its error).
COLUMN_MAX_CHARS = 64
DELIVER_AT_MAX_CHARS = 64


def _whole_number(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer; bool stays bool and is refused by strict int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _named(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must be 1 to {limit} characters",
                                  {"limit": NAME_MAX_CHARS})  # fmt: skip
    return value.strip()


def _deliver_at(value: Any) -> Any:
    # Text (the planner parses it) or, from Python, a datetime.
    if isinstance(value, datetime) or value is None:
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "must be a string")
    if len(value) > DELIVER_AT_MAX_CHARS:
        raise PydanticCustomError("too_long", "is too long: at most {limit} characters",
                                  {"limit": DELIVER_AT_MAX_CHARS})  # fmt: skip
    return value


Integer = Annotated[int, BeforeValidator(_whole_number)]
CampaignKind = Literal[Kind.SMS, Kind.EMAIL, Kind.WHATSAPP]
DeliverAt = Annotated[
    datetime | str | None,
    PlainValidator(_deliver_at),
    WithJsonSchema({
        "anyOf": [{"type": "string", "maxLength": DELIVER_AT_MAX_CHARS}, {"type": "null"}],
        "description": "When to send: ISO 8601 or 'YYYY-MM-DD HH:MM:SS' (DEFAULT_TIMEZONE if "
        "no offset); omit to send now",
        "examples": ["2030-01-15 09:00:00", "2030-01-15T12:00:00Z"],
    }),
]  # fmt: skip


class CampaignFields(BaseModel):
    """A campaign's options, each of the right shape (strict: 1 is not true)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # fmt: off
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS), AfterValidator(_named)]
    kind: CampaignKind
    text: Annotated[str, Field(max_length=TEMPLATE_MAX_CHARS)] = Field(
        description="Template: {field} is a recipient column, {{ and }} literal braces",
        examples=["Hola {name}, tu pedido llegó"])
    subject: Annotated[str, Field(max_length=SUBJECT_MAX_CHARS)] | None = Field(
        None, description="E-mail subject (required for email)")
    src: str | Integer | None = Field(None, description="Origin: src_number (WhatsApp; "
        "defaults to CONNECTUS_WHATSAPP_SRC_NUMBER) or src_email (e-mail; defaults to "
        "CONNECTUS_DEFAULT_SRC_EMAIL)")
    id_client: Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS)] | None = Field(
        None, description="Charge this subclient (v3)")
    deliver_at: DeliverAt = None
    account: Annotated[str, Field(max_length=32)] | None = Field(None, description="The Connectus "
        "account that sends it (CONNECTUS_ACCOUNTS); default: the tenant's, else the first")
    window: Annotated[str, Field(max_length=16)] | None = Field(
        None, description="Daily send window, local time", examples=["09:00-21:00"])
    # The bounds before the validator: the JSON schema then says minimum/maximum.
    max_lateness_s: Annotated[int, Field(ge=0, le=MAX_LATENESS_S),
                              BeforeValidator(_whole_number)] | None = Field(
        None, description="Seconds after deliver_at it may still start (0 = no limit); default "
        "CAMPAIGN_MAX_LATENESS_S")
    transport: Literal[Transport.V3, Transport.V1_BULK] | None = Field(
        None, description="SMS: v1_bulk (default) or v3; e-mail and WhatsApp: v3")
    skip_invalid: bool = Field(
        False, description="Leave invalid rows out (reported) instead of refusing")
    force: bool = Field(False, description="Send even if the cost exceeds the balance")
    connectus_delivery: bool | None = Field(None, description="v3: each released chunk in a "
        "Connectus delivery of its own (default: off, docs/campaigns.md)")
    # fmt: on


class CampaignOptions(CampaignFields):
    """The Python API's options: :class:`CampaignFields` and the idempotency key.

    Built as given, never refused here: an option of the wrong shape is kept in
    :attr:`shape_errors` and replaced by its default (or a stand-in), so that the
    planner's checks still run and every bad option is named together
    (``producers.campaign_plan.resolve``).
    """

    kind: CampaignKind = Kind.SMS
    idempotency_key: str | None = None
    _shape_errors: tuple[FieldError, ...] = PrivateAttr(default=())

    @property
    def shape_errors(self) -> tuple[FieldError, ...]:
        return self._shape_errors

    @model_validator(mode="wrap")
    @classmethod
    def _as_given(cls, given: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(given)
        except ValidationError as exc:
            if not isinstance(given, dict):
                raise
            errors = tuple(invalid_options(exc).errors)
        bad = {error.field for error in errors}
        kept = {name: value for name, value in given.items() if name not in bad}
        stand_ins = {name: value for name, value in _STAND_INS.items() if name in bad}
        options = handler({**kept, **stand_ins})
        options._shape_errors = errors
        return options


#: What stands in for a required option of the wrong shape.
_STAND_INS: dict[str, Any] = {"name": "-", "text": ""}


_OPTION_REASONS = {
    **REASONS,
    "extra_forbidden": "is not a field of a campaign",
    "dict_type": "must be an object (column: value)",
    "list_type": "must be an array of recipient objects",
    "bool_type": "must be true or false",
    "string_too_short": "is empty",
    # The one bounded number: max_lateness_s.
    "greater_than_equal": "must be 0 (no limit) or a number of seconds",
    "less_than_equal": f"must be at most {MAX_LATENESS_S} seconds (a year)",
    "dict_key": f"has a column name that is empty or longer than {COLUMN_MAX_CHARS} characters",
}


def invalid_options(exc: ValidationError) -> InvalidInput:
    """pydantic's errors for :class:`CampaignFields` (or the HTTP body), one per field,
    worded for people.

    A recipient's fields are named ``recipients.<index>.<column>``, the index
    from 0 as in JSON (``invalid_rows`` in a refusal count lines from 1).
    """
    return invalid_from_pydantic(exc, reasons=_OPTION_REASONS, free_form="recipients")
