"""Status progression through the one scheduler heap, driven by a hand-moved clock."""

from __future__ import annotations

import pytest

from tests.support.sandbox import sandbox, send_sms

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_sms_progresses_and_reports_smpp_and_platform_status() -> None:
    async with sandbox(step_delay_s=2.0) as sb:
        sms = await send_sms(sb)
        seen = []
        for _ in range(3):
            record = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()
            seen.append((record["status"], record["platform_status"]))
            sb.advance(2.0)
    assert seen == [
        ("ESME_ROK", "EN_COLA"),
        ("ESME_ROK", "ENVIADO_A_CARRIER"),
        ("DELIVRD", "ENTREGADO"),
    ]


async def test_nothing_moves_before_the_step_delay() -> None:
    async with sandbox(step_delay_s=2.0) as sb:
        sms = await send_sms(sb)
        moved = sb.advance(1.999)
        record = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()
    assert moved == 0
    assert record["platform_status"] == "EN_COLA"


async def test_undeliverable_rate_one_gives_undeliv() -> None:
    async with sandbox(step_delay_s=1.0, undeliverable_rate=1.0) as sb:
        sms = await send_sms(sb)
        sb.advance(10)
        record = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()
        v1 = (await sb.get("/api_v1/check_sms_status", params={"id_sms": sms["id"]})).json()
    assert (record["status"], record["platform_status"]) == ("UNDELIV", "NO_ENTREGABLE")
    assert v1 == {"status": "NO_ENTREGABLE"}


async def test_undeliverable_share_follows_the_rate_with_a_seed() -> None:
    async with sandbox(step_delay_s=0.0, undeliverable_rate=0.3, seed=7) as sb:
        for i in range(400):
            await send_sms(sb, f"m{i}")
        sb.advance(1)
        finals = [s for s in sb.state.tables[0].status]
    undelivered = sum(1 for s in finals if s == 5)
    assert 80 <= undelivered <= 160
    assert all(s in (5, 6) for s in finals)


async def test_every_status_change_is_notified_when_a_hook_is_set() -> None:
    async with sandbox(step_delay_s=1.0, sms_status_hook_url="http://hook/status") as sb:
        sms = await send_sms(sb)
        sb.advance(5)
    assert sb.notified == [
        ("http://hook/status", {"id_sms": sms["id"], "status": "EN_COLA"}),
        ("http://hook/status", {"id_sms": sms["id"], "status": "ENVIADO_A_CARRIER"}),
        ("http://hook/status", {"id_sms": sms["id"], "status": "ENTREGADO"}),
    ]


async def test_no_hook_url_no_notification() -> None:
    async with sandbox(step_delay_s=1.0) as sb:
        await send_sms(sb)
        sb.advance(5)
    assert sb.notified == []


async def test_scheduled_messages_notify_programado_then_progress() -> None:
    async with sandbox(step_delay_s=1.0, sms_status_hook_url="http://hook/s") as sb:
        body = {"delivery": {"name": "d", "deliver_at": "2025-01-15 09:00:10", "id_product": 1}}
        did = (await sb.post("/api_v3/deliveries", body)).json()["id"]
        await send_sms(sb, id_delivery=did)
        sb.advance(10)
        sb.advance(5)
    assert [p["status"] for _, p in sb.notified] == [
        "PROGRAMADO",
        "EN_COLA",
        "ENVIADO_A_CARRIER",
        "ENTREGADO",
    ]


async def test_email_progresses_and_gets_open_and_click_events() -> None:
    async with sandbox(step_delay_s=1.0, email_open_rate=1.0, email_click_rate=1.0) as sb:
        r = await sb.post(
            "/api_v3/email/send_single",
            {"dst_email": "a@b.cl", "src_email": "c@d.cl", "subject": "s", "email_content": "c"},
        )
        eid = r.json()["id"]
        statuses = []
        for _ in range(3):
            statuses.append((await sb.get(f"/api_v3/email/{eid}")).json()["status"])
            sb.advance(1.0)
        sb.advance(5)
        final = (await sb.get(f"/api_v3/email/{eid}")).json()
        v1 = (await sb.get("/api_v1/check_email_status_events", params={"id_email": eid})).json()
    assert statuses == ["EN_COLA", "NUMERO_ENVIADO", "ENTREGADO"]
    assert [e["event"] for e in final["events"]] == ["ABIERTO", "CLICKEADO"]
    assert v1["events"] == final["events"]
    assert final["events"][0]["timestamp"] == "2025-01-15 09:00:03"


async def test_whatsapp_status_and_messages_lookup() -> None:
    async with sandbox(step_delay_s=1.0) as sb:
        sent = await sb.post(
            "/api_v3/whatsapp/send_message",
            {"src_number": "56999944837", "dst_number": "56987688060", "whatsapp_content": "Test"},
        )
        other = await sb.post(
            "/api_v3/whatsapp/send_message",
            {"src_number": "56999944837", "dst_number": "56911111111", "whatsapp_content": "x"},
        )
        sb.advance(5)
        mid = sent.json()["message_id"]
        status = (await sb.get("/api_v3/whatsapp/status", params={"message_id": mid})).json()
        listing = (
            await sb.get(
                "/api_v3/whatsapp/messages",
                params={"src_number": "56999944837", "dst_number": "56987688060"},
            )
        ).json()
    assert sent.json()["status"] == "EN_COLA"
    assert other.status_code == 200
    assert status == {"message_id": mid, "status": "ENTREGADO"}
    assert [m["message_id"] for m in listing["messages"]] == [mid]
    assert listing["messages"][0]["whatsapp_content"] == "Test"


async def test_date_report_uses_local_days_inclusive() -> None:
    async with sandbox() as sb:
        first = await send_sms(sb, "day one")  # 2025-01-15 09:00 local
        sb.advance(86400)
        second = await send_sms(sb, "day two")
        both = (await sb.get("/api_v3/sms/date_report",
                             params={"begin_date": "2025-01-15", "end_date": "2025-01-16"})).json()  # fmt: skip
        one = (await sb.get("/api_v3/sms/date_report",
                            params={"begin_date": "2025-01-16", "end_date": "2025-01-16"})).json()  # fmt: skip
        bad = await sb.get(
            "/api_v3/sms/date_report", params={"begin_date": "2025-01-16", "end_date": "x"}
        )
    assert [m["id"] for m in both["messages"]] == [first["id"], second["id"]]
    assert [m["sms_content"] for m in one["messages"]] == ["day two"]
    assert one["messages"][0]["dst_number"] == "56987688060"
    assert (bad.status_code, bad.json()["field"]) == (400, "end_date")
