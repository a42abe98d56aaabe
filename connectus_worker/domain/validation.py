"""The checks behind every input, and the one error they raise.

Every rejection is an :class:`InvalidInput` (``"<field>: <reason>"``) listing every
bad field as a :class:`FieldError`, rendered as RFC 7807 ``invalid-params``
(:meth:`InvalidInput.to_problem`). Checks return the normalised value: callers store
what they get back, never what they were given. The send requests
(:mod:`domain.requests`) call these checks from their pydantic validators.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import email_validator
import phonenumbers
from pydantic import ValidationError

from connectus_worker.domain.models import SMS_MAX_CHARS, Kind

P = ParamSpec("P")
T = TypeVar("T")

#: Content limits, in characters (not bytes): each kind's in domain.models (KindSpec.max_chars).
#: Connectus charges one SMS per this many characters (its rule, see sms_segments).
SMS_SEGMENT_CHARS = 160
IDEMPOTENCY_KEY_MAX_CHARS = 200
#: A correlation id is stored with the job and logged on each of its lines.
CORRELATION_ID_MAX_CHARS = 128


@dataclass(frozen=True, slots=True)
class FieldError:
    """One rejected field: which one and why (the reason reads after the name)."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"

    def as_problem_param(self) -> dict[str, str]:
        """One entry of RFC 7807 ``invalid-params``."""
        return {"name": self.field, "reason": self.reason}


class InvalidInput(ValueError):
    """Input was rejected; ``errors`` lists every bad field (at least one).

    ``field`` and ``reason`` are those of the first error, so the common
    single-field case reads naturally.
    """

    def __init__(self, field: str, reason: str, *, errors: Iterable[FieldError] = ()) -> None:
        self.errors: list[FieldError] = [FieldError(field, reason), *errors]
        self.field = field
        self.reason = reason
        super().__init__("; ".join(str(error) for error in self.errors))

    @classmethod
    def from_errors(cls, errors: Iterable[FieldError]) -> InvalidInput:
        """Build one exception from several field errors (at least one)."""
        first, *rest = list(errors)
        return cls(first.field, first.reason, errors=rest)

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickling passes the message as the only argument, which
        # does not fit __init__; keep the exception picklable for processes.
        return (InvalidInput.from_errors, (self.errors,))

    def to_problem(
        self, *, status: int = 422, title: str = "Invalid input", type_: str = "about:blank"
    ) -> dict[str, Any]:
        """The RFC 7807 problem document, with the ``invalid-params`` extension."""
        return {
            "type": type_,
            "title": title,
            "status": status,
            "detail": str(self),
            "invalid-params": [error.as_problem_param() for error in self.errors],
        }


class ErrorCollector:
    """Run several checks and report all their failures together."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def check(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Return ``func(...)``, or None after recording its InvalidInput."""
        try:
            return func(*args, **kwargs)
        except InvalidInput as exc:
            self.errors.extend(exc.errors)
            return None

    def add(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidInput.from_errors(self.errors)


# --- pydantic's errors, in the same words ---------------------------------

#: How pydantic names the member of a str | int union in an error location.
UNION_MEMBER = re.compile(r"^(str|int|function-[a-z]+\[.*\])$")
_ENUM_MEMBER = re.compile(r"<\w+\.\w+: ('[^']*')>")
#: pydantic's error types, worded for people.
REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this message type",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "greater_than": "must be greater than 0",
}


def invalid_from_pydantic(
    exc: ValidationError,
    *,
    tagged: bool = False,
    reasons: Mapping[str, str] = REASONS,
    free_form: str | None = None,
) -> InvalidInput:
    """One :class:`InvalidInput` naming every field pydantic rejected, once each.

    ``tagged``: the model is a discriminated union, whose error locations
    start with the tag (``("sms", "dst_number")``); the tag is dropped. A
    check that raised ``PydanticCustomError("invalid", ...)`` gives its own
    reason, and may name its field (``ctx["field"]``: a check of the whole model).
    ``reasons``: pydantic's error types worded for this model; ``reasons["dict_key"]``
    words a bad key of an object, reported at the object. ``free_form``: the field
    whose objects' keys are the caller's own (a campaign's recipient columns: a
    column named ``str`` is no union member).
    """
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc: list[Any] = list(error["loc"])[1 if tagged else 0 :]
        ctx = error.get("ctx") or {}
        reason = reasons.get(error["type"], str(error["msg"]))
        if "field" in ctx:
            loc = [ctx["field"]]
        elif error["type"] in {"union_tag_not_found", "union_tag_invalid"} or (tagged and not loc):
            loc, reason = ["type"], "must be one of " + ", ".join(Kind)
        elif loc and loc[-1] == "[key]":
            # A bad key: ("recipients", i, name, "[key]") -> the object it is in.
            loc, reason = loc[:-2], reasons.get("dict_key", reason)
        elif error["type"] == "literal_error":
            # An enum member as pydantic shows it (<Kind.SMS: 'sms'>), as its value.
            reason = "must be " + _ENUM_MEMBER.sub(r"\1", str(ctx["expected"]))
        elif loc and loc[0] != free_form and UNION_MEMBER.match(str(loc[-1])):
            # A str | int field: pydantic reports once per member, at "field.str".
            loc, reason = loc[:-1], "must be a string or an integer"
        errors.append(FieldError(".".join(str(part) for part in loc) or "body", reason))
    return InvalidInput.from_errors(list(dict.fromkeys(errors)))


# --- phone numbers -------------------------------------------------------

_SEPARATORS = re.compile(r"[ ()./-]")
_NUMBER_CHARS = re.compile(r"^\+?[0-9]+$")  # after removing separators
_POSSIBLE_REASONS = {
    phonenumbers.ValidationResult.TOO_SHORT: "is too short",
    phonenumbers.ValidationResult.TOO_LONG: "is too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "has an invalid length",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "has an unknown country code",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "lacks an area code",
}
_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "is not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short",
    phonenumbers.NumberParseException.TOO_LONG: "is too long",
}


def _parse_number(text: str, region: str | None) -> phonenumbers.PhoneNumber | str:
    """The parsed valid number, or the reason it is not one."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return _PARSE_REASONS.get(exc.error_type, "is not a phone number")
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:
        return _POSSIBLE_REASONS.get(possible, "is not a possible number")
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        return f"is not a valid number for region {where}"
    return parsed


def normalize_number(
    value: str | int | object, *, field: str = "dst_number", default_region: str = "CL"
) -> str:
    """Return the number as digits-only E.164 without '+' (``"56987654321"``).

    Accepts ``+56 9 8765 4321``, ``0056…``, ``56987654321``, a national
    number of ``default_region`` and ints; any other type (None, floats, raw
    JSON values) is rejected with a reason. Digits without '+' are read as a
    national number of ``default_region`` first (phonenumbers also strips a
    leading country code of that region), then as international: Connectus
    itself writes numbers as E.164 digits without '+', so ``525512345678``
    is a Mexican number.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(field, "must be a string or an integer")
    if isinstance(value, int) and value < 0:
        raise InvalidInput(field, "is negative, not a phone number")
    text = str(value).strip()
    if not text:
        raise InvalidInput(field, "is empty")
    compact = _SEPARATORS.sub("", text)
    if not _NUMBER_CHARS.match(compact):
        raise InvalidInput(field, "is not a phone number (only digits, spaces, + ( ) . - allowed)")
    if compact.startswith("00"):
        compact = "+" + compact[2:]  # the ITU international call prefix
    if compact.startswith("+"):
        result = _parse_number(compact, None)
    else:
        result = _parse_number(compact, default_region)
        if isinstance(result, str):
            as_international = _parse_number("+" + compact, None)
            if not isinstance(as_international, str):
                result = as_international
    if isinstance(result, str):
        raise InvalidInput(field, result)
    return phonenumbers.format_number(result, phonenumbers.PhoneNumberFormat.E164)[1:]


# --- e-mail and content --------------------------------------------------


def normalize_email(value: object, *, field: str = "dst_email") -> str:
    """The normalised address (domain lower-cased, IDNA handled); no DNS lookup."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if not value.strip():
        raise InvalidInput(field, "is empty")
    try:
        result = email_validator.validate_email(value.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise InvalidInput(field, f"is not a valid e-mail address: {exc}") from exc
    return result.normalized


def _text(value: object, field: str, max_chars: int, *, blank: bool = False) -> str:
    """``value`` if it is a string, not empty (nor ``blank``), of at most ``max_chars``."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if not (value.strip() if blank else value):
        raise InvalidInput(field, "is empty")
    if len(value) > max_chars:
        raise InvalidInput(
            field, f"is too long: {len(value)} characters, at most {max_chars} allowed"
        )
    return value


def check_content(value: object, *, field: str, max_chars: int = SMS_MAX_CHARS) -> str:
    """The content unchanged if it is non-blank text of at most ``max_chars``, without NUL."""
    return refuse_unsafe_characters(_text(value, field, max_chars, blank=True), field=field)


def refuse_unsafe_characters(value: str, *, field: str, single_line: bool = False) -> str:
    """``value`` unchanged, unless it holds a NUL or (``single_line``) a CR or LF.

    NUL ends a string in C code downstream (and a Redis-stored text would be cut
    or refused there); CR/LF in a header-like value such as an e-mail subject
    can inject headers. The reason names the character and its position.
    """
    position = value.find("\x00")
    if position >= 0:
        raise InvalidInput(field, f"has a NUL character (\\x00) at position {position}")
    if single_line:
        for char, name in (("\r", "CR (\\r)"), ("\n", "LF (\\n)")):
            position = value.find(char)
            if position >= 0:
                raise InvalidInput(
                    field, f"has a line break {name} at position {position}: it is one line"
                )
    return value


def check_single_line(value: object, *, field: str, max_chars: int) -> str:
    """:func:`check_content` for a one-line text (an e-mail subject): no CR, LF or NUL."""
    return refuse_unsafe_characters(
        check_content(value, field=field, max_chars=max_chars), field=field, single_line=True
    )


def check_correlation_id(value: object, *, field: str = "correlation_id") -> str:
    """1-128 printable characters, returned unchanged: it is stored with the job and
    logged on every line of it, so a line break or a megabyte would reach both."""
    value = _text(value, field, CORRELATION_ID_MAX_CHARS)
    if not value.isprintable():
        position = next(i for i, char in enumerate(value) if not char.isprintable())
        raise InvalidInput(
            field, f"has a non-printable character {value[position]!r} at position {position}"
        )
    return value


def sms_segments(content: str) -> int:
    """How many SMS Connectus charges for ``content``: ceil(characters / 160), at least 1.

    This is Connectus's billing rule (160 UTF-8 *characters* per SMS, counted
    as code points), not the GSM-7/UCS-2 segmentation of the radio link: an
    accented or emoji text still counts 160 characters per SMS.
    """
    return max(1, math.ceil(len(content) / SMS_SEGMENT_CHARS))


# --- idempotency ---------------------------------------------------------


def validate_idempotency_key(value: object, *, field: str = "idempotency_key") -> str:
    """1-200 printable ASCII characters without whitespace (0x21-0x7E)."""
    value = _text(value, field, IDEMPOTENCY_KEY_MAX_CHARS)
    for position, char in enumerate(value):
        if not "\x21" <= char <= "\x7e":
            raise InvalidInput(
                field,
                f"has {char!r} at position {position}: only printable ASCII without "
                "whitespace is allowed",
            )
    return value
