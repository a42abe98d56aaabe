"""The sandbox's ``answers=documented`` and ``v1_params`` settings (in-process ASGI).

Documented answers are exactly the collection's saved examples; v1 takes its
parameters only in the query string, as every example of the v1 document sends
them, unless ``v1_params=any``. The same over HTTP with the worker:
tests/integration/test_documented_answers.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.config import FaultConfig
from sandbox.postman import COLLECTION
from tests.support.sandbox import sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


DOCUMENTED = FaultConfig(answers="documented")
SMS = {"dst_number": "56987688060", "sms_content": "hola"}


def _saved_200(name: str) -> Any:
    """The collection's saved 200 answer of the request called ``name``."""
    items = json.loads(COLLECTION.read_text())["item"]
    stack = list(items)
    while stack:
        item = stack.pop()
        stack.extend(item.get("item", []))
        if item.get("name") == name:
            ok = [r for r in item.get("response", []) if r.get("code") == 200]
            return json.loads(ok[0]["body"])
    raise AssertionError(f"no request {name!r} in the collection")


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("Send an individual SMS message", "/api_v3/sms/send_individual"),
        ("Send otp message", "/api_v3/sms/send_otp"),
    ],
)
async def test_documented_sms_answers_have_the_collections_keys_and_no_id(
    name: str, path: str
) -> None:
    async with sandbox(faults=DOCUMENTED) as sb:
        answer = await sb.post(path, SMS)
    assert answer.status_code == 200
    assert set(answer.json()) == set(_saved_200(name)) == {"status"}
    assert answer.json() == {"status": "ESME_ROK"}
    assert len(sb.state.ledger) == 1  # accepted and charged, as in the default mode


async def test_documented_answers_of_the_other_sends() -> None:
    email = {"dst_email": "a@b.cl", "src_email": "c@d.cl", "subject": "s", "email_content": "x"}
    whatsapp = {"src_number": "56999944837", "dst_number": "56987688060", "whatsapp_content": "x"}
    async with sandbox(faults=DOCUMENTED) as sb:
        single = (await sb.post("/api_v3/email/send_single", email)).json()
        otp_email = (await sb.post("/api_v3/email/send_otp_email", email)).json()
        wa = await sb.post("/api_v3/whatsapp/send_message", whatsapp)
        qr = await sb.post("/send", {"number": "56987688060", "message": "x"})
    # E-mail: the collection's {"id": "<string>"}; WhatsApp and QR: not shown, so {}.
    assert set(single) == set(otp_email) == {"id"}
    assert (wa.status_code, wa.json()) == (200, {})
    assert (qr.status_code, qr.json()) == (200, {})
    assert len(sb.state.ledger) == 4


async def test_the_answers_mode_switches_at_run_time_and_keeps_faults() -> None:
    async with sandbox() as sb:
        assert "id" in (await sb.post("/api_v3/sms/send_individual", SMS)).json()
        switched = await sb.client.put("/_sandbox/faults", json={"answers": "documented"})
        assert switched.json()["answers"] == "documented"
        assert (await sb.post("/api_v3/sms/send_individual", SMS)).json() == {"status": "ESME_ROK"}
        await sb.client.put("/_sandbox/faults", json={"throttle_rate": 1.0})
        throttled = await sb.post("/api_v3/sms/send_individual", SMS)
        bad = await sb.client.put("/_sandbox/faults", json={"answers": "nice"})
    assert throttled.json() == {"status": "ESME_RTHROTTLED"}
    assert bad.status_code == 400 and "answers" in bad.json()["error"]


async def test_v1_takes_its_parameters_in_the_query_string_only() -> None:
    params = {"dst_number": "56990324203", "sms_content": "x"}
    async with sandbox() as sb:
        query = await sb.client.post("/api_v1/send_sms", params=params)
        form = await sb.client.post("/api_v1/send_sms", data=params)
        as_json = await sb.client.post("/api_v1/send_sms", json=params)
    assert query.status_code == 200 and "id_sms" in query.json()
    for refused in (form, as_json):
        assert refused.status_code == 400
        assert refused.json()["field"] == "body" and "query string" in refused.json()["error"]
    assert len(sb.state.ledger) == 1


async def test_v1_bulk_numbers_are_json_numbers_as_documented() -> None:
    def bulk(number: Any) -> dict[str, str]:
        messages = [{"dst_number": number, "sms_content": "a"}]
        return {"messages": json.dumps(messages), "delivery_name": "d"}

    async with sandbox() as sb:
        ok = await sb.client.post("/api_v1/send_sms_bulk", params=bulk(56944444444))
        text = await sb.client.post("/api_v1/send_sms_bulk", params=bulk("56944444444"))
    assert ok.status_code == 200 and "id_sms" in ok.json()["messages"][0]
    assert text.status_code == 400 and text.json()["field"] == "messages"
    assert "messages[0].dst_number" in text.json()["error"]


async def test_v1_params_any_also_takes_a_body_and_numbers_as_text() -> None:
    async with sandbox(faults=FaultConfig(v1_params="any")) as sb:
        form = await sb.client.post(
            "/api_v1/send_sms", data={"dst_number": "56990324203", "sms_content": "x"}
        )
        messages = json.dumps([{"dst_number": "56944444444", "sms_content": "a"}])
        bulk = await sb.client.post(
            "/api_v1/send_sms_bulk", json={"messages": messages, "delivery_name": "d"}
        )
    assert form.status_code == 200 and bulk.status_code == 200
    assert len(sb.state.ledger) == 2
