from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pydantic
import pytest
import structlog

from connectus_worker.logging import configure_logging
from connectus_worker.logging.redaction import (
    mask_email,
    mask_phone,
    redact_event,
    redact_text,
    summarize_content,
)

OTP_TEXT = "Tu código de acceso es 483920"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def redact(**event: Any) -> dict[str, Any]:
    return dict(redact_event(None, "info", event))


# --- helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("56987654321", "569*****321"),
        (56987654321, "569*****321"),
        ("+56 9 8765 4321", "+569*****321"),
        ("5491123456789", "549*******789"),
        ("5212345678", "52*****678"),  # 10 digits: 5 still hidden
        ("12345678", "*****678"),
        ("1234567", "***"),
        ("", "***"),
    ],
)
def test_mask_phone(value: str | int, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("juan.perez@empresa.cl", "j***@empresa.cl"),
        ("a@b.co", "a***@b.co"),
        ("not-an-address", "***"),
        ("@empresa.cl", "***"),
    ],
)
def test_mask_email(value: str, masked: str) -> None:
    assert mask_email(value) == masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("enviado a 56987654321", "enviado a 569*****321"),
        ("to +56 9 8765 4321.", "to +569*****321."),
        ("dst=56987654321&x=1", "dst=569*****321&x=1"),
        ("(56987654321)", "(569*****321)"),
        ("mail juan.perez@empresa.cl now", "mail j***@empresa.cl now"),
        ("redis://:s3cr3t@10.0.0.1:6379/0", "redis://***@10.0.0.1:6379/0"),
        ("https://user:pass@api.connectus.cl/x", "https://***@api.connectus.cl/x"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: *** ***"),
        ("header Basic dXNlcjpwYXNz end", "header Basic *** end"),
        ("Bearer abc.def-ghi", "Bearer ***"),
        ("GET /x?api_key=abc123&n=1", "GET /x?api_key=***&n=1"),
        ('{"password": "hunter2"}', '{"password": "***"}'),
        ("Job(sms_content='Tu código 483920', n=1)", "Job(sms_content='***', n=1)"),
        ('{"otp": "483920"}', "{\"otp\": '***'}"),
        # Any 8-15 digit run could be a number: masked even when it is not one.
        ("ref 20240310", "ref *****310"),
    ],
)
def test_redact_text_masks(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "job 123e4567-e89b-12d3-a45b-426614174000 done",
        "due 2024-03-10 09:00:00",
        "took 1234567 ms",  # 7 digits: below the 8-digit floor
        "version 1.12345678",
        "id 6bfb1d9d4c6640bab93f23cfdbd5750f",
        "retry 3 of 20 in 15000 ms",
        "127.0.0.1:6379",
    ],
)
def test_redact_text_leaves_ids_dates_and_counts(text: str) -> None:
    assert redact_text(text) == text


def test_summarize_content_shows_length_not_text() -> None:
    summary = summarize_content(OTP_TEXT)
    assert summary.startswith(f"[{len(OTP_TEXT)} chars h:")
    assert "483920" not in summary
    assert summarize_content(OTP_TEXT) == summary  # correlatable within the process
    assert summarize_content(OTP_TEXT + ".") != summary


# --- the processor -------------------------------------------------------


def test_redact_event_known_fields() -> None:
    event = redact(
        event="sending",
        dst_number="56987654321",
        src_number=56911112222,
        to="juan.perez@empresa.cl",
        dst_email="maria@empresa.cl",
        id_sms=123456789012,  # not a phone field: an int id stays
        attempt=2,
        ok=True,
    )
    assert event == {
        "event": "sending",
        "dst_number": "569*****321",
        "src_number": "569*****222",
        "to": "j***@empresa.cl",
        "dst_email": "m***@empresa.cl",
        "id_sms": 123456789012,
        "attempt": 2,
        "ok": True,
    }


def test_redact_event_content_otp_and_secrets() -> None:
    event = redact(
        sms_content=OTP_TEXT,
        whatsapp_content="hola",
        email_content="<p>hola</p>",
        otp="483920",
        code=483920,
        api_key="k-123",
        password="p",
        Authorization="Basic dXNlcjpwYXNz",
        token="t",
        client_secret="s",
        SECRET_THING="s",
        idempotency_key="order-1",
        absent_secret=None,
    )
    assert event["sms_content"] == summarize_content(OTP_TEXT)
    assert event["whatsapp_content"].startswith("[4 chars h:")
    assert event["email_content"].startswith("[11 chars h:")
    for key in ("otp", "code", "api_key", "password", "Authorization", "token"):
        assert event[key] == "***", key
    assert event["client_secret"] == event["SECRET_THING"] == "***"
    assert event["idempotency_key"] == "order-1"
    assert event["absent_secret"] is None
    assert "483920" not in json.dumps(event)


def test_redact_event_recurses_into_nested_structures() -> None:
    event = redact(
        request={
            "dst_numbers": ["56987654321", "56911112222"],
            "headers": {"authorization": "Basic abc", "x-request-id": "r1"},
            "messages": [{"dst_number": "56987654321", "sms_content": OTP_TEXT}],
            "note": "llamar al +56 9 8765 4321",
        },
        batch=({"email": "ana@empresa.cl"},),
    )
    request = event["request"]
    assert request["dst_numbers"] == ["569*****321", "569*****222"]
    assert request["headers"] == {"authorization": "***", "x-request-id": "r1"}
    assert request["messages"][0]["dst_number"] == "569*****321"
    assert request["messages"][0]["sms_content"].startswith("[")
    assert request["note"] == "llamar al +569*****321"
    assert event["batch"] == [{"email": "a***@empresa.cl"}]


@dataclasses.dataclass
class Job:
    dst_number: str
    sms_content: str


class Request(pydantic.BaseModel):
    dst_email: str
    email_content: str


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(56987654321, sms_content='Tu código 483920')"


def test_redact_event_objects_are_masked_not_repr_d_raw() -> None:
    event = redact(
        job=Job("56987654321", OTP_TEXT),
        request=Request(dst_email="ana@empresa.cl", email_content="<b>x</b>"),
        thing=Opaque(),
        raw=b"\x00\x01",
        when=datetime(2024, 1, 1),
    )
    assert event["job"]["dst_number"] == "569*****321"
    assert event["request"]["dst_email"] == "a***@empresa.cl"
    assert event["thing"] == "Opaque(569*****321, sms_content='***')"
    assert event["raw"] == "<2 bytes>"
    assert event["when"] == "datetime.datetime(2024, 1, 1, 0, 0)"
    assert "483920" not in json.dumps(event)


def test_redact_event_survives_cycles() -> None:
    loop: dict[str, Any] = {"to": "56987654321"}
    loop["self"] = loop
    event = redact(loop=loop)
    assert event["loop"]["to"] == "569*****321"
    assert "<too deep>" in json.dumps(event)


# --- configure_logging ---------------------------------------------------


@pytest.mark.usefixtures("restore_logging")
def test_structlog_and_stdlib_records_are_json_and_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(level="INFO", json=True)
    structlog.get_logger("cw.worker").info(
        "sms sent", dst_number="56987654321", sms_content=OTP_TEXT, api_key="k"
    )
    logging.getLogger("dramatiq.worker").warning(
        "Failed to process %s for %s", "msg-1", "56987654321", extra={"otp": "483920"}
    )
    structlog.get_logger("cw.worker").debug("not shown")
    ours, theirs = lines(capsys.readouterr().err)
    assert ours["event"] == "sms sent"
    assert ours["logger"] == "cw.worker"
    assert ours["level"] == "info"
    assert ours["dst_number"] == "569*****321"
    assert ours["api_key"] == "***"
    assert ours["timestamp"].endswith("Z")
    datetime.fromisoformat(ours["timestamp"])
    assert theirs["event"] == "Failed to process msg-1 for 569*****321"
    assert theirs["logger"] == "dramatiq.worker"
    assert theirs["level"] == "warning"
    assert theirs["otp"] == "***"
    assert "483920" not in json.dumps([ours, theirs])


@pytest.mark.usefixtures("restore_logging")
def test_exception_text_is_redacted_for_both_paths(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", json=True)
    try:
        raise ValueError("number 56987654321 rejected for juan@empresa.cl")
    except ValueError:
        structlog.get_logger("cw").exception("failed")
        logging.getLogger("dramatiq").exception("failed too")
    records = lines(capsys.readouterr().err)
    assert len(records) == 2
    for record in records:
        assert "ValueError: number 569*****321 rejected for j***@empresa.cl" in record["exception"]
        assert "56987654321" not in json.dumps(record)


@pytest.mark.usefixtures("restore_logging")
def test_configure_twice_does_not_duplicate_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", json=True)
    configure_logging(level="WARNING", json=True)
    logging.getLogger("x").info("filtered by the new level")
    logging.getLogger("x").warning("once")
    assert [r["event"] for r in lines(capsys.readouterr().err)] == ["once"]


@pytest.mark.usefixtures("restore_logging")
def test_console_mode_is_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="DEBUG", json=False)
    structlog.get_logger("cw").debug("to", dst_number="56987654321")
    err = capsys.readouterr().err
    assert "569*****321" in err
    assert "56987654321" not in err
    assert not err.lstrip().startswith("{")


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level="LOUD", json=True)


# --- the fast paths give the same answers ----------------------------------


def test_redact_text_shortcut_never_changes_the_answer() -> None:
    """``redact_text`` skips the substitutions when no trigger is present; the
    answer must be what the full set of substitutions gives, on any text."""
    import random

    from connectus_worker.logging.redaction import _redact_all

    pieces = [
        "a", "Z", " ", "-", "+", ".", ":", "=", "/", "'", '"', "&", "_", "0", "5", "9",
        "56987654321", "+56 9 8765 4321", "1234 5678", "12345678", "2024-03-10",
        "://", "https://u:p@h/x", "@", "ana@empresa.cl", "Basic ", "BEARER x", "Token",
        "api_key=", "apiKey:", "secret", "PASSWD", "Authorization", "sms_content='x'",
        "otp", "code", "body", "content", "job", "6bfb1d9d4c66", "\u017fecret=x", "\u212a",
    ]  # fmt: skip
    rng = random.Random(7)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert redact_text(text) == _redact_all(text), text


@pytest.mark.usefixtures("restore_logging")
def test_disabled_levels_render_nothing_and_enabled_ones_write_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(level="INFO", json=True)
    dumps: list[str] = []

    class Payload:
        """Masked field by field through ``model_dump``, as a pydantic model is; counts
        how often the redaction asks for its fields."""

        def model_dump(self, mode: str) -> dict[str, str]:
            dumps.append(mode)
            return {"dst_number": "56987654321"}

    log = structlog.get_logger("cw.hot")
    log.debug("send.sent", provider_id="p-1", payload=Payload())
    assert dumps == []  # below the level: no processor ran
    log.info("send.sent", provider_id="p-1", payload=Payload())
    (line,) = lines(capsys.readouterr().err)
    assert line["payload"] == {"dst_number": "569*****321"} and line["logger"] == "cw.hot"
    assert dumps == ["json"]  # redacted once, when the line was written


@pytest.mark.usefixtures("restore_logging")
def test_keys_the_setup_writes_cannot_carry_a_callers_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """redact_event trusts ``timestamp``, ``level`` and ``logger`` because the
    logging setup writes them last: a caller's value under those names is replaced."""
    configure_logging(level="INFO", json=True)
    structlog.contextvars.bind_contextvars(level="56911111111", logger="56922222222")
    structlog.get_logger("cw").info("a", timestamp="56933333333")
    logging.getLogger("lib").warning(
        "b", extra={"level": "56944444444", "logger": "56955555555", "timestamp": "56966666666"}
    )
    records = lines(capsys.readouterr().err)
    assert [(r["level"], r["logger"]) for r in records] == [("info", "cw"), ("warning", "lib")]
    assert all(r["timestamp"].endswith("Z") for r in records)
    text = json.dumps(records)
    assert not any(f"569{d}" in text for d in "123456")


# --- epoch times are not phone numbers (issue 21) ---------------------------------

EPOCH_MS = "1765130000000"  # 13 digits: 2025-12-07
ARGENTINE_MOBILE = "5491123456789"  # 13 digits too


@pytest.mark.parametrize("key", ["due_ms", "created_at", "sent_ts", "timestamp", "now_ms"])
def test_epoch_times_in_time_fields_are_not_masked(key: str) -> None:
    event = {"event": "x", key: EPOCH_MS, "nested": {key: EPOCH_MS}, "seconds": {key: "1765130000"}}
    assert redact_event(None, "info", dict(event)) == event


@pytest.mark.parametrize(
    "text",
    [f"retry at due_ms={EPOCH_MS}", f"{{'deliver_at_ms': {EPOCH_MS}}}", f'{{"sent_at": "{EPOCH_MS}"}}',
     f"timestamp: {EPOCH_MS}", "expires_at = 1765130000"],
)  # fmt: skip
def test_epoch_times_after_a_time_key_in_text_are_not_masked(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("event", "masked"),
    [({"dst_number": ARGENTINE_MOBILE}, {"dst_number": "549*******789"}),
     ({"detail": f"sent to {ARGENTINE_MOBILE} at due_ms={EPOCH_MS}"},
      {"detail": f"sent to 549*******789 at due_ms={EPOCH_MS}"}),
     ({"detail": f"id={ARGENTINE_MOBILE}"}, {"detail": "id=549*******789"}),
     ({"note": EPOCH_MS}, {"note": "176*******000"}),  # not a time field: could be a number
     ({"due_ms": "56987654321"}, {"due_ms": "569*****321"}),  # 11 digits: no epoch time
     ({"detail": "due_ms=56987654321"}, {"detail": "due_ms=569*****321"})],
)  # fmt: skip
def test_phone_numbers_are_still_masked_next_to_times(
    event: dict[str, str], masked: dict[str, str]
) -> None:
    assert redact_event(None, "info", dict(event)) == masked
