"""The HTTP shapes (pydantic): answers, problems, webhook payloads and opt-out bodies.

The message bodies are :mod:`domain.requests`'s, shared with the producers;
the campaign shapes are in :mod:`service.campaign_schemas`. Webhook field names
are Connectus's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from connectus_worker.domain.models import SMS_MAX_CHARS, State
from connectus_worker.domain.request_fields import PHONE_PATTERN


class Accepted(BaseModel):
    """The answer to ``POST /v1/messages`` (202)."""

    job_id: str = Field(description="Use it with GET /v1/messages/{job_id}")
    state: State


class MessageControlled(BaseModel):
    job_id: str
    state: str = Field(description="The job's state after the call: cancelled")


class CampaignControlled(BaseModel):
    campaign_id: str
    action: str = Field(description="pause, resume or cancel")
    state: str = Field(description="The campaign's state after the call")


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


def _string_or_integer(value: Any) -> Any:
    # pydantic's lax mode would read true as 1 and 1.0 as 1: an event for message "1".
    if value is None or isinstance(value, str) or type(value) is int:
        return value  # None: the union's own "must be a string or an integer"
    what = {bool: "a boolean", float: "a number with a fraction or exponent", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip
    raise PydanticCustomError("invalid", f"must be a string or an integer, not {what}")


TextId = Annotated[str | int, BeforeValidator(_string_or_integer)]
ProviderId = Annotated[TextId, Field(description="Connectus's message id (id_sms)")]


# The webhook models ignore unknown fields (pydantic's default): Connectus may add
# fields, and an event must not be dropped for it.
class SmsStatusWebhook(BaseModel):
    id_sms: ProviderId
    status: Annotated[
        str,
        Field(pattern=r"^[A-Z0-9_]{1,40}$", description="Platform status, e.g. ENTREGADO"),
    ]


class SmsIncomingWebhook(BaseModel):
    id_sms: ProviderId
    dst_number: Annotated[TextId, Field(description="Our number that received the SMS")]
    src_number: Annotated[TextId, Field(description="The sender")]
    src_provider: Annotated[str, Field(max_length=64)] | None = None
    sms_content: Annotated[str, Field(max_length=SMS_MAX_CHARS * 4)]
    sms_content_binary: Annotated[str, Field(max_length=SMS_MAX_CHARS * 8)] | None = None


class WebhookAck(BaseModel):
    result: Literal["recorded", "duplicate"]


# --- opt-outs -----------------------------------------------------------------


class OptOutLookup(BaseModel):
    """``POST /v1/optouts/lookup``: a number's state and history."""

    model_config = ConfigDict(extra="forbid", strict=True)

    number: Annotated[str, Field(pattern=PHONE_PATTERN)] | int = Field(
        description="Phone number: E.164 with or without '+', or national (DEFAULT_REGION)",
        examples=["56987654321"],
    )


class OptOutChange(OptOutLookup):
    """``POST /v1/optouts``: opt a number out of marketing, or back in."""

    opted_out: bool = Field(description="true: opt out (as STOP); false: opt back in (as ALTA)")


class OptOutState(BaseModel):
    number: str = Field(description="E.164 digits without '+'")
    opted_out: bool
    changed: bool = Field(description="Whether this call changed it (false: it already was)")


class HistoryEntry(BaseModel):
    action: str = Field(description="out or in")
    source: str = Field(description="cli, intake, or sms:<id_sms> (an incoming keyword)")
    changed: bool
    at_ms: int = Field(description="When, epoch milliseconds")


class OptOutHistory(BaseModel):
    number: str
    opted_out: bool
    history: list[HistoryEntry]


class OptOutPage(BaseModel):
    numbers: list[str]
    next_cursor: int = Field(description="Pass as ?cursor= for the next page; 0: no more")
