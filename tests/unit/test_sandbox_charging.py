"""Charging, balances and the ledger, in-process."""

from __future__ import annotations

import hashlib
import json

import pytest

from sandbox.charging import country_of, normalize_number, segments_of
from sandbox.config import FaultConfig
from tests.support.sandbox import sandbox, send_sms

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (320, 2), (321, 3), (0, 1)]
)
def test_segments_are_ceil_of_160(length: int, segments: int) -> None:
    assert segments_of("a" * length) == segments


def test_segments_count_characters_not_bytes() -> None:
    assert segments_of("ñ" * 160) == 1
    assert segments_of("ñ" * 161) == 2


@pytest.mark.parametrize(
    ("number", "country"),
    [("56987688060", 1), ("+52 55 1234 5678", 2), ("593987654321", 4), ("14155550123", 5)],
)
def test_country_from_calling_code(number: str, country: int) -> None:
    normalized = normalize_number(number)
    assert normalized is not None
    assert country_of(normalized) == country


async def test_sms_charges_the_destination_country() -> None:
    async with sandbox(sms_balances={1: 10, 2: 10}) as sb:
        answer = await send_sms(sb, "x" * 161)
        await send_sms(sb, "y", dst_number="525512345678")
    assert answer["status"] == "ESME_ROK"
    assert answer["segments"] == 2
    assert len(answer["id"]) == 32
    assert sb.state.free.sms[1] == 8
    assert sb.state.free.sms[2] == 9


async def test_otp_costs_two_units_a_segment_and_can_store_a_hash() -> None:
    content = "Tu código es 123456 " * 9  # 180 characters: 2 segments
    async with sandbox(sms_balances={1: 100}) as sb:
        r = await sb.post(
            "/api_v3/sms/send_otp",
            {"dst_number": 56987688060, "sms_content": content, "save_content": "hash"},
        )
        record = (await sb.get(f"/api_v3/sms/{r.json()['id']}")).json()
        ledger = (await sb.get("/_sandbox/ledger")).json()["charges"]
    digest = hashlib.sha256(content.encode()).hexdigest()
    assert r.json()["segments"] == 2
    assert sb.state.free.sms[1] == 96
    assert record["sms_content"] == digest
    assert ledger[0]["units"] == 4
    assert ledger[0]["content_sha256"] == digest
    assert content not in json.dumps(ledger) + json.dumps(record)


async def test_unroutable_country_is_not_accepted_nor_charged() -> None:
    async with sandbox() as sb:
        r = await sb.post(
            "/api_v3/sms/send_individual", {"dst_number": "999123456789", "sms_content": "x"}
        )
    assert r.status_code == 200
    assert r.json() == {"status": "ESME_RINVDSTADR"}
    assert len(sb.state.ledger) == 0


async def test_no_balance_left_is_402() -> None:
    async with sandbox(sms_balances={1: 1}, email_balance=0) as sb:
        await send_sms(sb)
        sms = await sb.post(
            "/api_v3/sms/send_individual", {"dst_number": "56987688060", "sms_content": "x"}
        )
        email = await sb.post(
            "/api_v3/email/send_single",
            {"dst_email": "a@b.cl", "src_email": "c@d.cl", "subject": "s", "email_content": "c"},
        )
    assert sms.status_code == 402
    assert sms.json() == {"error": "Insufficient balance", "product": "sms", "id_country": 1}
    assert email.status_code == 402
    assert email.json()["product"] == "email"
    assert len(sb.state.ledger) == 1


async def test_ledger_records_every_charge() -> None:
    async with sandbox() as sb:
        sms = await send_sms(sb, "hola")
        email = await sb.post(
            "/api_v3/email/send_single",
            {
                "dst_email": "a@b.cl",
                "src_email": "c@d.cl",
                "subject": "s",
                "email_content": "<p>c</p>",
            },
        )
        wa = await sb.post(
            "/api_v3/whatsapp/send_message",
            {"src_number": "56999944837", "dst_number": "56987688060", "whatsapp_content": "w"},
        )
        ledger = (await sb.get("/_sandbox/ledger")).json()
    charges = ledger["charges"]
    assert [c["product"] for c in charges] == ["sms", "email", "whatsapp"]
    assert [c["provider_id"] for c in charges] == [
        sms["id"],
        email.json()["id"],
        wa.json()["message_id"],
    ]
    assert charges[0] == {
        "charge_id": 0,
        "product": "sms",
        "provider_id": sms["id"],
        "dst": "56987688060",
        "units": 1,
        "content_sha256": hashlib.sha256(b"hola").hexdigest(),
        "id_client": None,
        "id_delivery": sms["id_delivery"],
        "at": sb.clock.now,
    }
    assert ledger["next"] == 3 and ledger["total"] == 3


async def test_ledger_since_reads_incrementally() -> None:
    async with sandbox() as sb:
        for i in range(5):
            await send_sms(sb, f"m{i}")
        first = (await sb.get("/_sandbox/ledger", params={"limit": 2})).json()
        rest = (await sb.get("/_sandbox/ledger", params={"since": first["next"]})).json()
        empty = (await sb.get("/_sandbox/ledger", params={"since": rest["next"]})).json()
    assert [c["charge_id"] for c in first["charges"]] == [0, 1]
    assert [c["charge_id"] for c in rest["charges"]] == [2, 3, 4]
    assert empty["charges"] == [] and empty["next"] == 5


async def test_summary_counts_products_and_duplicates() -> None:
    async with sandbox() as sb:
        await send_sms(sb, "same")
        await send_sms(sb, "same")
        await send_sms(sb, "same", dst_number="56911111111")
        await send_sms(sb, "other")
        summary = (await sb.get("/_sandbox/ledger/summary")).json()
    assert summary["by_product"] == {"sms": {"charges": 4, "units": 4}}
    assert summary["duplicate_content"]["groups"] == 1
    assert summary["duplicate_content"]["charges"] == 3
    assert summary["duplicate_sends"]["groups"] == 1
    assert summary["duplicate_sends"]["top"][0]["count"] == 2
    assert summary["duplicate_sends"]["top"][0]["dst"] == "56987688060"


async def test_v1_bulk_reports_errors_per_message() -> None:
    messages = [
        {"dst_number": 56944444444, "sms_content": "a"},
        {"dst_number": 5691234, "sms_content": "b"},
        {"dst_number": 56244444444, "sms_content": "c"},
        {"dst_number": 56990324203, "sms_content": ""},
        {"dst_number": 56990324203, "sms_content": "d"},
    ]
    async with sandbox(sms_balances={1: 100}) as sb:
        r = await sb.client.post(
            "/api_v1/send_sms_bulk",
            params={
                "messages": json.dumps(messages),
                "delivery_name": "Douglas Adams quotes",
                "deliver_at": "2018-03-25 10:30:00",
            },
        )
        balance = (await sb.get("/api_v1/check_balance")).json()
    body = r.json()
    assert r.status_code == 200
    assert len(body["id_delivery"]) == 32
    out = body["messages"]
    assert "id_sms" in out[0] and "id_sms" in out[4]
    assert out[1] == {"error": "NUMERO_INVALIDO", "dst_number": 5691234}
    assert out[2] == {"error": "NUMERO_INVALIDO", "dst_number": 56244444444}
    assert out[3]["dst_number"] == 56990324203 and "error" in out[3]
    assert balance == {"balance": "98"}


async def test_v1_bulk_caps_at_1000_messages() -> None:
    messages = [{"dst_number": 56944444444, "sms_content": "a"}] * 1001
    # So many don't fit a query string: the relaxed setting takes them as a form.
    async with sandbox(faults=FaultConfig(v1_params="any")) as sb:
        r = await sb.client.post(
            "/api_v1/send_sms_bulk",
            data={"messages": json.dumps(messages), "delivery_name": "x"},
        )
    assert r.status_code == 400
    assert r.json()["field"] == "messages"
    assert len(sb.state.ledger) == 0


async def test_v1_send_sms_rejects_a_non_chilean_mobile() -> None:
    async with sandbox() as sb:
        bad = await sb.client.post(
            "/api_v1/send_sms", params={"dst_number": 5215512345678, "sms_content": "x"}
        )
        good = await sb.client.post(
            "/api_v1/send_sms", params={"dst_number": 56990324203, "sms_content": "x"}
        )
        status = await sb.get("/api_v1/check_sms_status", params={"id_sms": good.json()["id_sms"]})
    assert bad.status_code == 400
    assert bad.json() == {"error": "NUMERO_INVALIDO", "field": "dst_number"}
    assert good.status_code == 200
    assert status.json() == {"status": "EN_COLA"}


async def test_v1_email_and_balances_are_strings() -> None:
    async with sandbox(email_balance=5) as sb:
        r = await sb.client.post(
            "/api_v1/send_email",
            params={"dst_email": "unemail@uncliente.com", "email_content": "x"},
        )
        balance = (await sb.get("/api_v1/check_email_balance")).json()
        v3_balance = (await sb.get("/api_v3/email/balance")).json()
        events = (
            await sb.get(
                "/api_v1/check_email_status_events", params={"id_email": r.json()["id_email"]}
            )
        ).json()
    assert balance == {"balance": "4"}
    assert v3_balance == {"balance": 4}
    assert events == {"status": "EN_COLA", "events": []}
