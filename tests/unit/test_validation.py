from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectus_worker.domain.countries import connectus_country
from connectus_worker.domain.deliver_at import (
    DELIVER_AT_PAST_GRACE_S,
    localize,
    parse_deliver_at,
)
from connectus_worker.domain.models import EMAIL_MAX_CHARS, SMS_MAX_CHARS, WHATSAPP_MAX_CHARS
from connectus_worker.domain.validation import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    ErrorCollector,
    FieldError,
    InvalidInput,
    check_content,
    normalize_email,
    normalize_number,
    sms_segments,
    validate_idempotency_key,
)

SANTIAGO = ZoneInfo("America/Santiago")
# Chile 2024: clocks went back at 24:00 on 6 April (23:00-23:59 happened
# twice) and forward at 24:00 on 7 September (00:00-00:59 on the 8th never happened).
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def rejects(call: Callable[[], object], field: str, reason: str) -> None:
    """``call()`` raises InvalidInput naming ``field`` with ``reason`` in its reason."""
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{field}: ")


# --- InvalidInput --------------------------------------------------------


def test_invalid_input_message_and_problem_document() -> None:
    exc = InvalidInput("dst_number", "is empty", errors=[FieldError("dst_email", "is empty")])
    assert str(exc) == "dst_number: is empty; dst_email: is empty"
    assert isinstance(exc, ValueError)
    problem = exc.to_problem(status=400)
    assert problem["status"] == 400
    assert problem["invalid-params"] == [
        {"name": "dst_number", "reason": "is empty"},
        {"name": "dst_email", "reason": "is empty"},
    ]


def test_invalid_input_survives_pickling() -> None:
    exc = InvalidInput.from_errors([FieldError("a", "x"), FieldError("b", "y")])
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    assert copy.errors == exc.errors
    assert str(copy) == "a: x; b: y"


def test_error_collector_reports_every_bad_field() -> None:
    errors = ErrorCollector()
    number = errors.check(normalize_number, "+56 9 8765 4321")
    errors.check(normalize_email, "not-an-address")
    errors.check(check_content, "  ", field="sms_content")
    errors.add("deliver_at", "is in the past")
    assert number == "56987654321"
    with pytest.raises(InvalidInput) as caught:
        errors.raise_if_any()
    assert [e.field for e in caught.value.errors] == ["dst_email", "sms_content", "deliver_at"]


def test_error_collector_without_errors_does_not_raise() -> None:
    errors = ErrorCollector()
    errors.check(validate_idempotency_key, "abc")
    errors.raise_if_any()
    assert errors.errors == []


# --- phone numbers -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "+56 9 8765 4321",
        "+56987654321",
        "56987654321",
        "0056987654321",
        "0056 9 8765 4321",
        "(+56) 9-8765-4321",
        "9 8765 4321",  # national, default region CL
        56987654321,
    ],
)
def test_normalize_number_accepts_chilean_forms(value: str | int) -> None:
    assert normalize_number(value) == "56987654321"


@pytest.mark.parametrize(
    ("value", "expected", "country_id"),
    [
        ("+52 55 1234 5678", "525512345678", 2),
        ("525512345678", "525512345678", 2),  # E.164 digits without '+', as Connectus writes
        ("+51 912 345 678", "51912345678", 3),
        ("+593 99 123 4567", "593991234567", 4),
        ("+1 202 555 0143", "12025550143", 5),
        ("+57 321 1234567", "573211234567", 6),
        ("+54 9 11 2345 6789", "5491123456789", 7),
        ("+55 11 91234 5678", "5511912345678", 8),
        ("+506 8312 3456", "50683123456", 10),
        ("+598 94 231 234", "59894231234", 12),
        ("+595 961 456789", "595961456789", 13),
        ("+591 71234567", "59171234567", 14),
        ("+502 5123 4567", "50251234567", 15),
        ("+56 2 2123 4567", "56221234567", 1),  # Santiago landline
    ],
)
def test_normalize_number_and_country_ids(value: str, expected: str, country_id: int) -> None:
    number = normalize_number(value)
    assert number == expected
    assert connectus_country(number) == country_id
    assert connectus_country("+" + number) == country_id


def test_a_country_connectus_does_not_serve_has_no_country_id() -> None:
    assert connectus_country(normalize_number("+33 6 12 34 56 78")) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("abc", "is not a phone number"),
        ("+56 9 8765 4321 ext 5", "is not a phone number"),
        ("++56987654321", "is not a phone number"),
        ("56+987654321", "is not a phone number"),
        ("123", "is too short"),
        ("+52 1234", "is too short"),
        ("5698765432111111", "is too long"),
        ("+999 123456789", "unknown country code"),
        ("+56 1 1234 5678", "is not a valid number for region CL"),
        ("+1 555 123 4567", "is not a valid number for region US"),
        (-56987654321, "is negative"),
        (True, "must be a string or an integer"),
        (56987654321.0, "must be a string or an integer"),
        (None, "must be a string or an integer"),
    ],
)
def test_normalize_number_rejections_name_field_and_reason(value: object, reason: str) -> None:
    rejects(lambda: normalize_number(value), "dst_number", reason)


def test_normalize_number_uses_the_given_field_and_region() -> None:
    rejects(lambda: normalize_number("", field="src_number"), "src_number", "is empty")
    assert normalize_number("55 1234 5678", default_region="MX") == "525512345678"


# --- e-mail --------------------------------------------------------------


def test_normalize_email_lowercases_the_domain_only() -> None:
    assert normalize_email(" Juan.Perez@Empresa.CL ") == "Juan.Perez@empresa.cl"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("juan", "is not a valid e-mail address"),
        ("juan@", "is not a valid e-mail address"),
        ("juan@@empresa.cl", "is not a valid e-mail address"),
        ("juan perez@empresa.cl", "is not a valid e-mail address"),
        (42, "must be a string"),
    ],
)
def test_normalize_email_rejections(value: object, reason: str) -> None:
    rejects(lambda: normalize_email(value), "dst_email", reason)
    rejects(lambda: normalize_email(value, field="src_email"), "src_email", reason)


# --- content and segments ------------------------------------------------


def test_check_content_returns_content_unchanged() -> None:
    assert check_content(" Hola ", field="sms_content") == " Hola "
    assert check_content("x" * SMS_MAX_CHARS, field="sms_content") == "x" * SMS_MAX_CHARS


@pytest.mark.parametrize(
    ("value", "max_chars", "reason"),
    [
        ("", SMS_MAX_CHARS, "is empty"),
        (" \n\t", SMS_MAX_CHARS, "is empty"),
        (None, SMS_MAX_CHARS, "must be a string"),
        (b"bytes", SMS_MAX_CHARS, "must be a string"),
        ("x" * (SMS_MAX_CHARS + 1), SMS_MAX_CHARS, "1601 characters, at most 1600"),
        ("x" * (WHATSAPP_MAX_CHARS + 1), WHATSAPP_MAX_CHARS, "at most 4096"),
        ("x" * (EMAIL_MAX_CHARS + 1), EMAIL_MAX_CHARS, "at most 1000000"),
    ],
)
def test_check_content_rejections(value: object, max_chars: int, reason: str) -> None:
    rejects(
        lambda: check_content(value, field="sms_content", max_chars=max_chars),
        "sms_content",
        reason,
    )


@pytest.mark.parametrize(
    ("length", "segments"), [(0, 1), (1, 1), (160, 1), (161, 2), (320, 2), (321, 3), (1600, 10)]
)
def test_sms_segments_counts_160_characters_per_sms(length: int, segments: int) -> None:
    assert sms_segments("a" * length) == segments


def test_sms_segments_counts_characters_not_bytes() -> None:
    # 160 "ñ" are 320 UTF-8 bytes and would be 3 UCS-2 segments; Connectus charges 1.
    assert sms_segments("ñ" * 160) == 1
    assert sms_segments("ñ" * 161) == 2


# --- deliver_at ----------------------------------------------------------


def test_parse_deliver_at_none_means_now() -> None:
    assert parse_deliver_at(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-10 09:00:00", datetime(2024, 3, 10, 12, 0, tzinfo=UTC)),  # Connectus format
        ("2024-03-10T09:00", datetime(2024, 3, 10, 12, 0, tzinfo=UTC)),
        ("2024-03-10T12:00:00Z", datetime(2024, 3, 10, 12, 0, tzinfo=UTC)),
        ("2024-03-10T07:00:00-05:00", datetime(2024, 3, 10, 12, 0, tzinfo=UTC)),
        ("2024-03-10T12:00:00.250+00:00", datetime(2024, 3, 10, 12, 0, 0, 250_000, tzinfo=UTC)),
        (datetime(2024, 3, 10, 9, 0), datetime(2024, 3, 10, 12, 0, tzinfo=UTC)),
        (datetime(2024, 3, 10, 9, 0, tzinfo=SANTIAGO), datetime(2024, 3, 10, 12, 0, tzinfo=UTC)),
    ],
)
def test_parse_deliver_at_forms(value: datetime | str, expected: datetime) -> None:
    result = parse_deliver_at(value, now=NOW)
    assert result == expected
    assert result is not None and result.tzinfo is UTC


def test_parse_deliver_at_uses_the_given_zone() -> None:
    result = parse_deliver_at("2024-03-10 09:00:00", tz="America/Mexico_City", now=NOW)
    assert result == datetime(2024, 3, 10, 15, 0, tzinfo=UTC)


def test_dst_fold_takes_the_earlier_instant() -> None:
    now = datetime(2024, 4, 1, tzinfo=UTC)
    result = parse_deliver_at("2024-04-06 23:30:00", now=now)
    # First occurrence, still at -03:00 (the second would be 03:30 UTC).
    assert result == datetime(2024, 4, 7, 2, 30, tzinfo=UTC)


def test_dst_gap_moves_forward_by_the_gap() -> None:
    now = datetime(2024, 9, 1, tzinfo=UTC)
    result = parse_deliver_at("2024-09-08 00:30:00", now=now)
    assert result == datetime(2024, 9, 8, 4, 30, tzinfo=UTC)
    assert result is not None
    assert result.astimezone(SANTIAGO).strftime("%H:%M") == "01:30"  # not earlier than asked


def test_localize_leaves_ordinary_times_alone() -> None:
    assert localize(datetime(2024, 1, 15, 10, 0), SANTIAGO).utcoffset() == timedelta(hours=-3)
    assert localize(datetime(2024, 7, 15, 10, 0), SANTIAGO).utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("mañana", "is not a date and time"),
        ("2024-03-10", "is not a date and time"),
        ("10/03/2024 09:00", "is not a date and time"),
        ("2024-13-10 09:00:00", "is not a valid date and time"),
        ("2024-02-30 09:00:00", "is not a valid date and time"),
        ("2024-03-10 25:00:00", "is not a valid date and time"),
        (date(2024, 3, 10), "is a date without a time of day"),
        (1710061200, "must be a datetime or a string"),
        ("2024-02-29 08:00:00", "is in the past"),
        ("2026-03-10 09:00:00", "days ahead"),
    ],
)
def test_parse_deliver_at_rejections(value: object, reason: str) -> None:
    rejects(lambda: parse_deliver_at(value, now=NOW), "deliver_at", reason)  # type: ignore[arg-type]


def test_parse_deliver_at_allows_a_little_clock_skew() -> None:
    just_past = NOW - timedelta(seconds=DELIVER_AT_PAST_GRACE_S - 1)
    assert parse_deliver_at(just_past, now=NOW) == just_past


# --- idempotency keys ----------------------------------------------------


@pytest.mark.parametrize("value", ["a", "order-123:sms", "~!@#$%^&*()_+{}|", "x" * 200])
def test_idempotency_key_accepted(value: str) -> None:
    assert validate_idempotency_key(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("x" * (IDEMPOTENCY_KEY_MAX_CHARS + 1), "201 characters, at most 200"),
        ("order 123", "' ' at position 5"),
        ("order\t123", "'\\t' at position 5"),
        ("pedido-ñ", "'ñ' at position 7"),
        ("a\x7f", "position 1"),
        (123, "must be a string"),
    ],
)
def test_idempotency_key_rejections(value: object, reason: str) -> None:
    rejects(lambda: validate_idempotency_key(value), "idempotency_key", reason)
