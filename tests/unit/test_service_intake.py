"""Intake: auth, problem+json shapes, body limit, every message type, correlation id."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectus_worker.domain.hashing import content_hash
from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from tests.support.service import (
    BEARER,
    E164,
    NUMBER,
    OTHER_TOKEN,
    SMS,
    TOKEN,
    invalid_params,
    problem,
    service,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- auth ----------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"bearer {TOKEN}x", "Bearer tok-A-0123"],
)
async def test_requests_without_a_valid_token_are_401_and_enqueue_nothing(
    authorization: str | None,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with service() as svc:
        post = await svc.client.post("/v1/messages", json=SMS, headers=headers)
        get = await svc.client.get("/v1/messages/abc", headers=headers)
        assert svc.redis.dbsize() == 0
    for response in (post, get):
        problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN])
async def test_each_configured_token_is_accepted_scheme_case_insensitive(token: str) -> None:
    async with service() as svc:
        response = await svc.client.post(
            "/v1/messages", json=SMS, headers={"Authorization": f"bEaReR {token}"}
        )
    assert response.status_code == 202, response.text


# --- accepted messages ---------------------------------------------------

GOOD: list[dict[str, Any]] = [
    SMS,
    {**SMS, "src_number": "4374", "id_client": "c1", "id_delivery": "d1", "priority": "bulk"},
    {"type": "otp", "dst_number": 56987654321, "sms_content": "Tu código es ABCD"},
    {
        "type": "email",
        "dst_email": "Ana@Example.com",
        "subject": "Hola",
        "email_content": "<p>x</p>",
    },
    {"type": "otp_email", "dst_email": "a@example.com", "subject": "Code", "email_content": "1"},
    {"type": "whatsapp", "dst_number": NUMBER, "whatsapp_content": "hola", "src_number": E164},
    {"type": "whatsapp_qr", "number": NUMBER, "message": "hola", "priority": "bulk"},
    {"type": "whatsapp_qr_group", "group_name": "Equipo ventas", "message": "hola"},
    {**SMS, "deliver_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()},
]
QUEUE = {"sms": "transactional", "otp": "otp", "email": "transactional", "otp_email": "otp",
         "whatsapp": "transactional", "whatsapp_qr": "bulk",
         "whatsapp_qr_group": "transactional"}  # fmt: skip


@pytest.mark.parametrize("body", GOOD, ids=lambda b: f"{b['type']}-{len(b)}")
async def test_every_type_is_queued_and_readable(body: dict[str, Any]) -> None:
    async with service() as svc:
        response = await svc.send(body)
        assert response.status_code == 202, response.text
        answer = response.json()
        assert set(answer) == {"job_id", "state"}
        assert response.headers["location"] == f"/v1/messages/{answer['job_id']}"
        record = await svc.client.get(response.headers["location"], headers=BEARER)
    assert record.status_code == 200
    data = record.json()
    assert data["job_id"] == answer["job_id"] and data["kind"] == body["type"]
    expected = State.SCHEDULED if "deliver_at" in body else State.QUEUED
    assert answer["state"] == data["state"] == expected
    if body.get("priority") == "bulk":
        assert data["queue"] == "bulk"
    elif "deliver_at" not in body:
        assert data["queue"] == QUEUE[body["type"]]
    # No content in records (codes of letters: digits could appear in an id or a time).
    assert "hola" not in record.text and "ABCD" not in record.text


async def test_request_id_is_echoed_and_reaches_the_job_record() -> None:
    async with service() as svc:
        response = await svc.send(SMS, **{"X-Request-ID": "req-42.a:b"})
        generated = await svc.send({**SMS, "sms_content": "otro"}, **{"X-Request-ID": "bad id!"})
        first = svc.store.get(response.json()["job_id"])
        second = svc.store.get(generated.json()["job_id"])
    assert response.headers["x-request-id"] == "req-42.a:b"
    assert first is not None and first.correlation_id == "req-42.a:b"
    # A malformed id is replaced, not trusted: 32 hex digits, returned and recorded.
    new_id = generated.headers["x-request-id"]
    assert len(new_id) == 32 and new_id != "bad id!"
    assert second is not None and second.correlation_id == new_id


# --- problems --------------------------------------------------------------


async def test_every_bad_field_is_named_in_invalid_params() -> None:
    body = {"type": "sms", "dst_number": 1.5, "sms_content": 3, "colour": "red"}
    async with service() as svc:
        response = await svc.send(body)
        assert svc.redis.dbsize() == 0
    assert invalid_params(response) == {
        "dst_number": "must be a string or an integer",
        "sms_content": "must be a string",
        "colour": "is not a field of this message type",
    }


async def test_semantic_errors_come_from_the_producer_all_at_once() -> None:
    async with service() as svc:
        response = await svc.send(
            {"type": "sms", "dst_number": "12345", "sms_content": " ", "deliver_at": "mañana"}
        )
    assert set(invalid_params(response)) == {"dst_number", "sms_content", "deliver_at"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dst_number": E164, "sms_content": "x"}, "type"),
        ({"type": "fax", "dst_number": E164}, "type"),
        ({"type": "sms", "sms_content": "x"}, "dst_number"),
        ({"type": "otp", "dst_number": E164, "sms_content": "x", "priority": "bulk"}, "priority"),
        ({"type": "whatsapp", "dst_number": E164, "whatsapp_content": "x"}, "src_number"),
        ({**SMS, "sms_content": "x" * 1601}, "sms_content"),
        ({**SMS, "priority": "urgent"}, "priority"),
        ({**SMS, "dst_number": True}, "dst_number"),
    ],
)
async def test_shape_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    async with service() as svc:
        response = await svc.send(body)
    assert field in invalid_params(response)


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"text"', "application/json", 400),
        (b'{"type": NaN}', "application/json", 400),
        (b'{"type": "\\ud800"}', "application/json", 400),  # lone surrogate
        (b"\xff\xfe", "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),  # nesting bomb
        (b'{"n": ' + b"9" * 5000 + b"}", "application/json", 400),  # beyond int digit limit
        (b"type=sms", "application/x-www-form-urlencoded", 415),
        (b"{}", "", 415),
    ],
)
async def test_unreadable_bodies_are_4xx_problems(
    content: bytes, content_type: str, status: int
) -> None:
    async with service() as svc:
        response = await svc.client.post(
            "/v1/messages", content=content, headers={**BEARER, "Content-Type": content_type}
        )
    problem(response, status)


async def test_problem_json_media_type_is_accepted_as_json() -> None:
    async with service() as svc:
        response = await svc.client.post(
            "/v1/messages",
            content=b'{"type": "sms", "dst_number": "56987654321", "sms_content": "x"}',
            headers={**BEARER, "Content-Type": "application/vnd.example+json; charset=utf-8"},
        )
    assert response.status_code == 202, response.text


async def test_unknown_job_unknown_route_and_wrong_method_are_problems() -> None:
    async with service() as svc:
        missing = await svc.client.get("/v1/messages/0123456789abcdef", headers=BEARER)
        odd = await svc.client.get("/v1/messages/..%2F..%2Fetc", headers=BEARER)
        nowhere = await svc.client.get("/v2/nothing")
        method = await svc.client.delete("/v1/messages", headers=BEARER)
    assert "0123456789abcdef" in problem(missing, 404)["detail"]
    problem(odd, 404)
    problem(nowhere, 404)
    problem(method, 405)


# --- body limit ------------------------------------------------------------


async def test_a_declared_oversized_body_is_413() -> None:
    async with service(INTAKE_MAX_BODY_BYTES="1024") as svc:
        big = {**SMS, "sms_content": "x" * 1100}
        response = await svc.send(big)
        fits = await svc.send({**SMS, "sms_content": "x" * 900})
    assert "1024 bytes" in problem(response, 413)["detail"]
    assert fits.status_code == 202


async def test_an_undeclared_stream_is_cut_off_at_the_limit_not_read_to_the_end() -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1_000):  # 1000 x 1 KiB = 1000 KiB, far above the 8 KiB limit
            sent.append(1)
            yield b" " * 1024

    async with service(INTAKE_MAX_BODY_BYTES="8192") as svc:
        response = await svc.client.post(
            "/v1/messages",
            content=chunks(),
            headers={**BEARER, "Content-Type": "application/json"},
        )
    assert "content-length" not in response.request.headers  # chunked: no declared size
    problem(response, 413)
    assert len(sent) < 20, f"read {len(sent)} KiB before refusing"


# --- time limits (max_age_s / expires_at) ---------------------------------------


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"max_age_s": 0}, "max_age_s", "must be greater than 0 seconds"),
        ({"max_age_s": "60"}, "max_age_s", "must be a number of seconds"),
        ({"max_age_s": 60, "expires_at": "2099-01-01T00:00:00Z"}, "expires_at",
         "give max_age_s or expires_at, not both"),
        ({"expires_at": "2099-01-01 10:00:00"}, "expires_at", "has no UTC offset (add Z or +hh:mm)"),
        ({"expires_at": 1}, "expires_at", "must be an ISO 8601 date and time with an offset"),
    ],
)  # fmt: skip
async def test_a_bad_limit_is_422_naming_the_field_and_enqueues_nothing(
    extra: dict[str, Any], field: str, reason: str
) -> None:
    async with service() as svc:
        response = await svc.send({**SMS, **extra})
        assert svc.redis.dbsize() == 0
    assert invalid_params(response) == {field: reason}


async def test_an_infinite_max_age_is_422() -> None:
    body = '{"type": "sms", "dst_number": "56987654321", "sms_content": "x", "max_age_s": 1e999}'
    async with service() as svc:
        response = await svc.client.post(
            "/v1/messages", content=body,
            headers={**BEARER, "Content-Type": "application/json"},
        )  # fmt: skip
        assert svc.redis.dbsize() == 0
    assert invalid_params(response) == {
        "max_age_s": "must be a finite number (it overflows to infinity)"
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"type": "sms", "dst_number": "56987654321", "sms_content": "x", "extra": 1e999}',
         "extra"),
        ('{"type": "sms", "dst_number": "56987654321", "sms_content": "x", "a": {"b": [1, -1e999]}}',
         "a.b[1]"),
    ],
)  # fmt: skip
async def test_an_overflowing_number_anywhere_is_422_naming_it(body: str, field: str) -> None:
    # With an Idempotency-Key the body is fingerprinted before it is validated:
    # inf used to fail there with a 500 (issue 21, Medium 4).
    async with service() as svc:
        response = await svc.client.post(
            "/v1/messages", content=body,
            headers={**BEARER, "Content-Type": "application/json", "Idempotency-Key": "inf-1"},
        )  # fmt: skip
        assert svc.redis.dbsize() == 0
    assert response.status_code == 422
    assert invalid_params(response) == {field: "must be a finite number (it overflows to infinity)"}


async def test_a_limit_is_accepted_and_shown_in_the_record() -> None:
    until = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    async with service() as svc:
        accepted = await svc.send({"type": "otp", "dst_number": NUMBER,
                                   "sms_content": "Código 482913", "expires_at": until.isoformat()})  # fmt: skip
        assert accepted.status_code == 202, accepted.text
        record = await svc.client.get(accepted.headers["location"], headers=BEARER)
        assert datetime.fromisoformat(record.json()["expires_at"]) == until
        plain = await svc.send(SMS)
        record = await svc.client.get(plain.headers["location"], headers=BEARER)
        assert record.json()["expires_at"] is None


@pytest.mark.parametrize("field", ["deliver_at", "expires_at"])
async def test_a_time_out_of_the_range_of_dates_is_422_not_a_crash(field: str) -> None:
    # The year 10000 in UTC: astimezone() overflows; it used to escape as a 500.
    async with service() as svc:
        response = await svc.send({**SMS, field: "9999-12-31T23:59:59-05:00"})
    assert invalid_params(response) == {field: "is out of the range of dates"}


async def test_no_digest_of_content_is_in_an_answer_or_the_document() -> None:
    # issue 21, High 2: the plain SHA-256 of an OTP in GET /v1/messages/{id}
    # gave the 6-digit code away in under a second.
    text = "Tu código es 482913"
    async with service() as svc:
        accepted = await svc.send({"type": "otp", "dst_number": NUMBER, "sms_content": text})
        assert accepted.status_code == 202, accepted.text
        record = await svc.client.get(accepted.headers["location"], headers=BEARER)
        kept = svc.redis.hget(svc.keys.job(accepted.json()["job_id"]), "content_hmac")
        document = (await svc.client.get("/openapi.json")).json()
    assert record.status_code == 200 and record.json()["kind"] == "otp"
    assert kept is not None and kept.decode() not in record.text
    assert content_hash(text) not in record.text
    assert not re.search(r"[0-9a-f]{64}", record.text)
    fields = document["components"]["schemas"]["JobRecord"]["properties"]
    assert not {name for name in fields if "sha" in name or "hmac" in name or "hash" in name}


async def test_a_reused_key_says_only_different_body_not_the_other_job() -> None:
    # The key was used from Python first: the job-level check refuses the HTTP
    # request. The 422 used to name the other job's id; it says no more than
    # "different body" now (issue 21, High 2: the answer is an oracle on OTPs).
    async with service() as svc:
        first = Producer(svc.settings, redis_client=svc.redis).send_otp(
            E164, "Tu código es 111111", idempotency_key="login-7"
        )
        body = {"type": "otp", "dst_number": NUMBER, "sms_content": "Tu código es 222222"}
        response = await svc.send(body, **{"Idempotency-Key": "login-7"})
    assert response.status_code == 422
    assert first not in response.text and "222222" not in response.text
    assert problem(response, 422)["detail"] == (
        "this Idempotency-Key was already used with a different request body"
    )
    assert invalid_params(response) == {
        "Idempotency-Key": "was already used for a different message"
    }
