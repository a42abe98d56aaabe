"""The HTTP shapes of campaigns: ``POST /v1/campaigns`` and its answers (pydantic).

These models validate the body's shape and are the source of the OpenAPI
document. The options are :class:`campaign.options.CampaignFields`, the model
the producers and the CLI validate with too; the checks that need the settings
are the campaign planner's (:func:`producers.campaign_plan.resolve`). The plan
and the status have the shapes the producers give them
(:class:`producers.campaign_plan.CampaignPlanOut`,
:class:`producers.campaign_control.CampaignStatusOut`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from connectus_worker.campaign.options import COLUMN_MAX_CHARS, CampaignFields
from connectus_worker.producers.campaign_plan import (
    CampaignPlanOut,
    CampaignPlanSummary,
    InvalidRowOut,
)
from connectus_worker.service.schemas import Problem

#: Most recipients one ``POST /v1/campaigns`` may carry (the body limit,
#: INTAKE_MAX_BODY_BYTES, usually binds first); larger lists go through the
#: CLI or ``CampaignProducer``, which stream files of any size.
CAMPAIGN_MAX_RECIPIENTS = 100_000
#: Most columns in one recipient row, and the longest column name and value.
ROW_MAX_COLUMNS = 100
CELL_MAX_CHARS = 10_000
CELL_REASON = "must be text, a number, true/false or null"


def _cell(value: Any) -> Any:
    # One error per bad value, worded for people (a 4-member union would give four).
    if isinstance(value, str) and len(value) > CELL_MAX_CHARS:
        raise PydanticCustomError(
            "cell_too_long", "is too long: at most {limit} characters", {"limit": CELL_MAX_CHARS}
        )
    if value is None or isinstance(value, str | bool | int | float):
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


class CampaignRequest(CampaignFields):
    """The body of ``POST /v1/campaigns``: a campaign's options and its recipients."""

    recipients: Annotated[
        list[RecipientRow], Field(min_length=1, max_length=CAMPAIGN_MAX_RECIPIENTS)
    ]


class CampaignAccepted(BaseModel):
    """The answer to ``POST /v1/campaigns`` (202)."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str = Field(description="Use it with GET /v1/campaigns/{campaign_id}")
    created: bool = Field(description="false: the idempotency key named an existing campaign")
    plan: CampaignPlanOut


class CampaignProblem(Problem):
    """RFC 7807 problem for ``POST /v1/campaigns``: a refused campaign adds ``refusals``,
    ``invalid_rows`` (line = position in recipients, from 1) and ``plan``."""

    refusals: list[str] | None = None
    invalid_rows: list[InvalidRowOut] | None = None
    plan: CampaignPlanSummary | None = None
