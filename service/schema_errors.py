"""pydantic's validation errors as one :class:`core.validation.InvalidInput`.

Every bad field is named at once, one line per field, in words for people
rather than pydantic's (a ``str | int`` field fails once per union member, and
a discriminated union's locations start with the tag). Split from
:mod:`service.schemas` because it is how errors are reported, not a shape, and
the two together were over the size guideline.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from core.validation import FieldError, InvalidInput
from service.campaign_schemas import COLUMN_MAX_CHARS


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
    "float_type": "must be a number",
    "greater_than": "must be greater than 0",
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
    """Like :func:`invalid_from_pydantic`, for :class:`service.campaign_schemas.CampaignRequest`.

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
