"""Bodies and answers of the opt-out endpoints (:mod:`service.optouts`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from connectus_worker.domain.request_fields import PHONE_PATTERN


class OptOutChange(BaseModel):
    """``POST /v1/optouts``: opt a number out of marketing, or back in."""

    model_config = ConfigDict(extra="forbid", strict=True)

    number: Annotated[str, Field(pattern=PHONE_PATTERN)] | int = Field(
        description="Phone number: E.164 with or without '+', or national (DEFAULT_REGION)",
        examples=["56987654321"],
    )
    opted_out: bool = Field(description="true: opt out (as STOP); false: opt back in (as ALTA)")


class OptOutLookup(BaseModel):
    """``POST /v1/optouts/lookup``: a number's state and history."""

    model_config = ConfigDict(extra="forbid", strict=True)

    number: Annotated[str, Field(pattern=PHONE_PATTERN)] | int = Field(
        description="Phone number: E.164 with or without '+', or national (DEFAULT_REGION)",
        examples=["56987654321"],
    )


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
