"""Issue 21 (Low, input): CR/LF in an e-mail subject, NUL in content, an unchecked
correlation_id and a webhook id of ``true`` are refused, each naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fakeredis
import pytest

from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import load_settings
from connectus_worker.domain.validation import (
    CORRELATION_ID_MAX_CHARS,
    InvalidInput,
    check_content,
    check_correlation_id,
    check_single_line,
    refuse_unsafe_characters,
)
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaigns import CampaignProducer
from tests.support.service import invalid_params, service

NUMBER = "+56 9 8765 4321"
EMAIL = "cliente@example.com"


@pytest.fixture
def producer() -> Producer:
    settings = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "contacto@empresa.cl"})
    return Producer(settings, redis_client=fakeredis.FakeRedis())


# --- the helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [("a\x00b", "has a NUL character (\\x00) at position 1"),
     ("Hola\r\nBcc: x@y.z", "has a line break CR (\\r) at position 4: it is one line"),
     ("Hola\nBcc: x@y.z", "has a line break LF (\\n) at position 4: it is one line")],
)  # fmt: skip
def test_single_line_refuses_nul_cr_and_lf(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_single_line(text, field="subject", max_chars=998)
    assert (info.value.field, info.value.reason) == ("subject", reason)


def test_content_may_have_line_breaks_but_no_nul() -> None:
    assert check_content("línea 1\r\nlínea 2", field="sms_content") == "línea 1\r\nlínea 2"
    with pytest.raises(InvalidInput, match=r"sms_content: has a NUL character"):
        check_content("codigo\x00 1234", field="sms_content")
    assert refuse_unsafe_characters("tab\tok", field="x", single_line=True) == "tab\tok"


@pytest.mark.parametrize(
    ("value", "reason"),
    [({"a": 1}, "must be a string"), (12, "must be a string"), ("", "is empty"),
     ("x" * (CORRELATION_ID_MAX_CHARS + 1), "is too long: 129 characters, at most 128"),
     ("order-1\nforged line", "non-printable character '\\n' at position 7"),
     ("a\x00", "non-printable character '\\x00' at position 1")],
)  # fmt: skip
def test_correlation_id_rejections(value: object, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_correlation_id(value)
    assert info.value.field == "correlation_id"
    assert reason in info.value.reason


def test_correlation_id_accepts_printable_text_up_to_the_limit() -> None:
    for value in ("order-42", "pedido ñandú #7", "x" * CORRELATION_ID_MAX_CHARS):
        assert check_correlation_id(value) == value


# --- from Python: nothing is enqueued ------------------------------------------

BAD_CALLS: list[tuple[str, Callable[[Producer], Any], str]] = [
    ("subject CRLF", lambda p: p.send_email(EMAIL, "Hola\r\nBcc: all@x.cl", "<p>x</p>"), "subject"),
    ("subject LF", lambda p: p.send_otp_email(EMAIL, "Código\n", "123456"), "subject"),
    ("subject NUL", lambda p: p.send_email(EMAIL, "Ho\x00la", "<p>x</p>"), "subject"),
    ("email NUL", lambda p: p.send_email(EMAIL, "Hola", "<p>\x00</p>"), "email_content"),
    ("sms NUL", lambda p: p.send_sms(NUMBER, "hola\x00"), "sms_content"),
    ("otp NUL", lambda p: p.send_otp(NUMBER, "\x00123456"), "sms_content"),
    ("whatsapp NUL", lambda p: p.send_whatsapp(NUMBER, "a\x00", src_number="56999944837"),
     "whatsapp_content"),
    ("qr NUL", lambda p: p.send_whatsapp_qr(NUMBER, "a\x00"), "message"),
    ("correlation dict", lambda p: p.send_sms(NUMBER, "hola", correlation_id={"a": 1}),
     "correlation_id"),
    ("correlation 1 MB", lambda p: p.send_sms(NUMBER, "hola", correlation_id="x" * 1_000_000),
     "correlation_id"),
    ("correlation newline", lambda p: p.send_otp(NUMBER, "1234", correlation_id="a\nb"),
     "correlation_id"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "call", "field"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_producers_refuse_naming_the_field(
    producer: Producer, name: str, call: Callable[[Producer], Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        call(producer)
    assert [error.field for error in info.value.errors] == [field]
    assert producer.redis.dbsize() == 0


def test_a_good_correlation_id_is_stored_with_the_job(producer: Producer) -> None:
    job_id = producer.send_sms(NUMBER, "hola\nmundo", correlation_id="pedido-42")
    assert producer.get_status(job_id).correlation_id == "pedido-42"


def test_campaign_rows_with_nul_are_invalid_rows() -> None:
    campaigns = CampaignProducer(load_settings({}), redis_client=fakeredis.FakeRedis())
    rows = [
        {"dst_number": NUMBER, "name": "Ana"},
        {"dst_number": "+56 9 8765 4322", "name": "B\x00"},
    ]
    report = campaigns.preflight(rows, CampaignOptions(name="p", text="Hola {name}")).report
    assert report.valid == 1
    assert [(row.line, row.field) for row in report.invalid] == [(2, "text")]
    assert "NUL" in report.invalid[0].reason


# --- over HTTP: 422 naming the field -----------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "field"),
    [({"type": "email", "dst_email": EMAIL, "subject": "Hola\r\nBcc: all@x.cl",
       "email_content": "<p>x</p>"}, "subject"),
     ({"type": "sms", "dst_number": NUMBER, "sms_content": "hola\u0000"}, "sms_content")],
)  # fmt: skip
async def test_intake_refuses_naming_the_field(body: dict[str, Any], field: str) -> None:
    async with service() as svc:
        response = await svc.send(body)
        assert field in invalid_params(response)
        assert svc.redis.dbsize() == 0


WEBHOOK_IDS = [
    ("status", "id_sms", True, "not a boolean"),
    ("status", "id_sms", 1.0, "not a number with a fraction or exponent"),
    ("status", "id_sms", [1], "not an array"),
    ("incoming", "id_sms", True, "not a boolean"),
    ("incoming", "src_number", False, "not a boolean"),
    ("incoming", "dst_number", {"n": 1}, "not an object"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("hook", "field", "value", "reason"), WEBHOOK_IDS)
async def test_webhook_ids_are_not_coerced(
    hook: str, field: str, value: object, reason: str
) -> None:
    body: dict[str, Any] = (
        {"id_sms": "9", "status": "ENTREGADO"} if hook == "status"
        else {"id_sms": "9", "dst_number": "4374", "src_number": NUMBER, "sms_content": "hola"}
    )  # fmt: skip
    body[field] = value
    async with service() as svc:
        send = svc.status_hook if hook == "status" else svc.incoming_hook
        response = await send(body)
        params = invalid_params(response)
        assert list(params) == [field]
        assert params[field] == f"must be a string or an integer, {reason}"
        assert svc.events() == []


@pytest.mark.anyio
async def test_webhook_integer_id_is_still_accepted() -> None:
    async with service() as svc:
        response = await svc.status_hook({"id_sms": 12345, "status": "ENTREGADO"})
        assert response.status_code == 200, response.text
        assert [event["id_sms"] for event in svc.events()] == ["12345"]
