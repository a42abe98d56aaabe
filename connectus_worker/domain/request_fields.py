"""The field types of a send request (:mod:`domain.requests`), each with its check.

Each is an ``Annotated`` pydantic type whose validator calls a check of
:mod:`domain.validation` and gives its reason as pydantic's error. Checks that depend
on the deployment read the :class:`config.Settings` and the clock from the
validation context (:func:`context_of`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from connectus_worker.config import Settings
from connectus_worker.domain.deliver_at import parse_deliver_at
from connectus_worker.domain.models import EMAIL_MAX_CHARS, SMS_MAX_CHARS, WHATSAPP_MAX_CHARS
from connectus_worker.domain.validation import (
    InvalidInput,
    check_content,
    check_single_line,
    normalize_email,
    normalize_number,
)

SUBJECT_MAX_CHARS = 998  # RFC 5322 line limit
#: WhatsApp's limit for a group's name (its "subject").
GROUP_NAME_MAX_CHARS = 100
ID_MAX_CHARS = 64
#: Characters a phone number may contain (normalize_number checks the rest).
PHONE_PATTERN = r"^\+?[0-9 ().-]{1,32}$"


def context_of(info: ValidationInfo) -> tuple[Settings, datetime]:
    """The settings and the clock (``now``) that :func:`domain.requests.parse_request` passes."""
    context = info.context or {}
    return context["settings"], context.get("now") or datetime.now(UTC)


def check_account(value: Any, settings: Settings, tenant: str) -> str:
    """``value`` if ``tenant`` may send through that Connectus account (the reason names
    no other account: tenants do not learn each other's)."""
    if not isinstance(value, str) or value not in settings.tenant_account_names(tenant):
        raise InvalidInput("account", "is not a Connectus account you can send through")
    return value


def _account(value: Any, info: ValidationInfo) -> str:
    return check_account(value, context_of(info)[0], (info.context or {}).get("tenant", "default"))


def _phone(value: Any, info: ValidationInfo) -> str:
    region = context_of(info)[0].default_region
    return normalize_number(value, default_region=region)


def _src_number(value: Any, info: ValidationInfo) -> str:
    """A source number: a full number, or a short code (3 to 8 digits) like ``4374``."""
    text = str(value).strip()
    if isinstance(value, str | int) and text.isdigit() and 3 <= len(text) <= 8:
        return text
    return _phone(value, info)


def _whatsapp_src_number(value: Any, info: ValidationInfo) -> str:
    """WhatsApp's origin: the one given, else ``CONNECTUS_WHATSAPP_SRC_NUMBER``."""
    if value is None:
        value = context_of(info)[0].connectus_whatsapp_src_number
    if value is None:
        raise InvalidInput("src_number", "is required: the WhatsApp origin number assigned "
                                         "to the account (or set "
                                         "CONNECTUS_WHATSAPP_SRC_NUMBER)")  # fmt: skip
    return _src_number(value, info)


def _src_email(value: Any, info: ValidationInfo) -> str:
    value = value or context_of(info)[0].connectus_default_src_email
    if value is None:
        raise InvalidInput("src_email", "is required (or set CONNECTUS_DEFAULT_SRC_EMAIL)")
    return normalize_email(value)


def _client_id(value: Any, _: ValidationInfo) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX_CHARS:
        raise InvalidInput("id", f"must be a non-empty string of at most {ID_MAX_CHARS} characters")
    return value.strip()


def _deliver_at(value: Any, info: ValidationInfo) -> datetime | None:
    settings, now = context_of(info)
    when = parse_deliver_at(value, tz=settings.default_timezone, now=now)
    if when is not None and when > now + timedelta(seconds=settings.job_ttl_s * 0.9):
        raise InvalidInput("deliver_at", "is later than the job records live (JOB_TTL_S)")
    return when


def _max_age_s(value: Any, info: ValidationInfo) -> float:
    """A positive, finite number of seconds (not bool, not text) within the records' life."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("max_age_s", "must be a number of seconds")
    if not math.isfinite(value):
        raise InvalidInput("max_age_s", "must be a finite number of seconds")
    if value <= 0:
        raise InvalidInput("max_age_s", "must be greater than 0 seconds")
    horizon_s = context_of(info)[0].job_ttl_s * 0.9
    if value > horizon_s:
        raise InvalidInput("max_age_s", f"is longer than the job records live "
                                        f"({horizon_s:.0f} s, 0.9 x JOB_TTL_S)")  # fmt: skip
    return float(value)


def _expires_at(value: Any, info: ValidationInfo) -> datetime:
    """An aware datetime later than now, as UTC; from a datetime or ISO 8601 text.

    Unlike ``deliver_at``, a time without an offset is refused rather than read
    in ``DEFAULT_TIMEZONE``: a deadline read an hour off sends a stale OTP.
    """
    field = "expires_at"
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInput(field, "is empty (omit it for the default maximum age)")
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidInput(
                field, "is not an ISO 8601 date and time (e.g. 2030-01-15T12:00:00Z)"
            ) from exc
    if not isinstance(value, datetime):
        raise InvalidInput(field, "must be an ISO 8601 date and time with an offset")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "has no UTC offset (add Z or +hh:mm)")
    try:
        result = value.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise InvalidInput(field, "is out of the range of dates") from exc
    if result <= context_of(info)[1].astimezone(UTC):
        raise InvalidInput(field, f"is not in the future ({result.isoformat()})")
    return result


def _checked(check: Callable[[Any, ValidationInfo], Any], schema: Any) -> Any:
    """Validate with ``check``, its reason as pydantic's error; ``schema``: the JSON input."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, info)
        except InvalidInput as exc:
            raise PydanticCustomError("invalid", "{reason}", {"reason": exc.reason}) from exc

    return PlainValidator(validate, json_schema_input_type=schema)


def _content(max_chars: int, *, single_line: bool = False) -> Any:
    """Text of at most ``max_chars``; ``single_line``: header-like, where CR/LF would
    inject headers."""
    check = check_single_line if single_line else check_content
    return _checked(lambda value, _: check(value, field="content", max_chars=max_chars),
                    Annotated[str, Field(max_length=max_chars)])  # fmt: skip


_PhoneInput = Annotated[str, Field(pattern=PHONE_PATTERN)] | int
Phone = Annotated[
    str,
    _checked(_phone, _PhoneInput),
    Field(description="Phone number: E.164 with or without '+', or national (DEFAULT_REGION)",
          examples=["56987654321", "+56 9 8765 4321"]),
]  # fmt: skip
SrcNumber = Annotated[
    Annotated[str, _checked(_src_number, _PhoneInput)] | None,
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
# Optional fields carry their description outside the union: inside it, pydantic (and
# so the OpenAPI document and the CLI's help) would not see it.
MaxAge = Annotated[
    Annotated[float, _checked(_max_age_s, Annotated[float, Field(gt=0)])] | None,
    Field(description="Never send it later than this many seconds after it is due (deliver_at, "
          "or now); fails as Expired instead. Default: MAX_MESSAGE_AGE_S, OTP_MAX_AGE_S for an "
          "OTP. Not with expires_at", examples=[300]),
]  # fmt: skip
AccountName = Annotated[
    Annotated[str, _checked(_account, Annotated[str, Field(max_length=32)])] | None,
    Field(description="The Connectus account that sends it (CONNECTUS_ACCOUNTS); default: the "
          "tenant's (TENANT_ACCOUNTS), else the first", examples=["default"]),
]  # fmt: skip
ExpiresAt = Annotated[
    Annotated[datetime, _checked(_expires_at, Annotated[str, Field(max_length=64)])] | None,
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


SmsContent = Annotated[
    str,
    _content(SMS_MAX_CHARS),
    Field(description="Message content (160 characters per SMS; an OTP's is kept only as a "
          "hash)"),
]  # fmt: skip
Subject = Annotated[
    str, _content(SUBJECT_MAX_CHARS, single_line=True), Field(description="Subject line")
]
EmailContent = Annotated[str, _content(EMAIL_MAX_CHARS), Field(description="HTML content")]
WhatsappContent = Annotated[str, _content(WHATSAPP_MAX_CHARS), Field(description="Message content")]
GroupName = Annotated[
    str,
    _content(GROUP_NAME_MAX_CHARS, single_line=True),
    Field(description="The group's name (the QR API's groupName), as created",
          examples=["Equipo ventas"]),
]  # fmt: skip
