"""The admin API (balances, incoming SMS, stats) and the WhatsApp QR API, in-process."""

from __future__ import annotations

import pytest

from tests.support.sandbox import AUTH, sandbox, send_sms

pytestmark = pytest.mark.anyio

BEARER = {"Authorization": "Bearer sandbox-key"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_put_balance_sets_free_and_client_balances() -> None:
    async with sandbox() as sb:
        cid = (await sb.post("/api_v3/clients", {"name": "c"})).json()["id_unique"]
        free = await sb.client.put(
            "/_sandbox/balance", json={"product": "sms", "id_country": 1, "amount": 0}
        )
        client = await sb.client.put(
            "/_sandbox/balance", json={"product": "email", "amount": 4, "id_client": cid}
        )
        bad = await sb.client.put("/_sandbox/balance", json={"product": "fax", "amount": 1})
        refused = await sb.post(
            "/api_v3/sms/send_individual", {"dst_number": "56987688060", "sms_content": "x"}
        )
    assert free.status_code == 200 and client.status_code == 200
    assert (bad.status_code, bad.json()["field"]) == (400, "product")
    assert refused.status_code == 402
    found = sb.state.clients.get(cid)
    assert found is not None and found.balances.email == 4


async def test_incoming_sms_goes_to_the_incoming_hook() -> None:
    async with sandbox(sms_incoming_hook_url="http://hook/in") as sb:
        r = await sb.post(
            "/_sandbox/incoming_sms",
            {"src_number": "56990324203", "dst_number": "56442330001", "sms_content": "Hola Connectus!",
             "src_provider": "Wom"},
        )  # fmt: skip
    assert r.json()["queued"] is True
    url, payload = sb.notified[0]
    assert url == "http://hook/in"
    assert payload == {
        "id_sms": r.json()["id_sms"],
        "dst_number": "56442330001",
        "src_number": "56990324203",
        "src_provider": "Wom",
        "sms_content": "Hola Connectus!",
        "sms_content_binary": "486f6c6120436f6e6e656374757321",
    }


async def test_stats_count_requests_by_route_and_status() -> None:
    async with sandbox() as sb:
        await send_sms(sb)
        await sb.client.post("/api_v3/sms/send_individual", json={}, auth=None)
        stats = (await sb.get("/_sandbox/stats")).json()
    assert stats["requests"]["POST /api_v3/sms/send_individual"] == {"200": 1, "401": 1}
    assert stats["messages"]["sms"] == 1
    assert stats["charges"] == 1


async def test_qr_direct_messages() -> None:
    async with sandbox() as sb:
        c = sb.client
        qr = await c.get("/qr", auth=None, headers=BEARER)
        sent = await c.post("/send", json={"number": "584141992998", "message": "Hola"}, auth=AUTH)
        # The collection sends a JSON body on this GET.
        last = await c.request("GET", "/get-last-messages", json={"number": "584141992998"})
        by_query = await c.get("/get-last-messages", params={"number": "584141992998"})
        ledger = (await sb.get("/_sandbox/ledger")).json()["charges"]
    assert qr.json()["qr"]
    assert sent.json()["success"] is True
    messages = last.json()["messages"]
    assert [m["message_id"] for m in messages] == [sent.json()["message_id"]]
    assert messages[0]["message"] == "Hola" and messages[0]["from_me"] is True
    assert by_query.json() == last.json()
    assert ledger[0]["product"] == "whatsapp_qr"


async def test_qr_groups_follow_the_collection_flow() -> None:
    async with sandbox() as sb:
        c = sb.client
        created = await c.post(
            "/create-group", json={"name": "prueba", "numbers": ["584141924112"]}
        )
        dup = await c.post("/create-group", json={"name": "prueba", "numbers": ["584141924112"]})
        added = await c.post(
            "/add-participants", json={"groupName": "prueba", "numbers": ["34624477715"]}
        )
        admin = await c.post(
            "/make-group-admins", json={"groupName": "prueba", "numbers": ["34624477715"]}
        )
        not_member = await c.post(
            "/make-group-admins", json={"groupName": "prueba", "numbers": ["5691"]}
        )
        link = await c.request("GET", "/generate-invite-link", json={"groupName": "prueba"})
        renamed = await c.post(
            "/update-group-info",
            json={"groupName": "prueba", "newSubject": "Nuevo", "newDescription": "desc"},
        )
        sent = await c.post("/send-message-to-group", json={"groupName": "Nuevo", "message": "m"})
        last = await c.request("GET", "/get-last-group-messages", json={"groupName": "Nuevo"})
        old = await c.request("GET", "/get-last-group-messages", json={"groupName": "prueba"})
    assert created.json()["success"] is True
    assert (dup.status_code, dup.json()["field"]) == (400, "name")
    assert added.json()["group"]["participants"] == ["34624477715", "584141924112"]
    assert admin.json()["group"]["admins"] == ["34624477715"]
    assert (not_member.status_code, not_member.json()["field"]) == (400, "numbers")
    assert link.json()["invite_link"].startswith("https://chat.whatsapp.com/")
    assert renamed.json()["group"]["description"] == "desc"
    assert sent.json()["success"] is True
    assert [m["message"] for m in last.json()["messages"]] == ["m"]
    assert old.status_code == 404


async def test_a_disconnected_qr_session_refuses_sends_and_charges_nothing() -> None:
    async with sandbox() as sb:
        c = sb.client
        await c.post("/create-group", json={"name": "g", "numbers": ["584141924112"]})
        off = await c.put("/_sandbox/qr_session", json={"status": "DISCONNECTED"})
        status_off = await c.get("/status")
        send = await c.post("/send", json={"number": "584141992998", "message": "Hola"})
        group = await c.post("/send-message-to-group", json={"groupName": "g", "message": "m"})
        add = await c.post("/add-participants", json={"groupName": "g", "numbers": ["5691"]})
        qr = await c.get("/qr")
        charges_off = (await sb.get("/_sandbox/ledger")).json()["total"]
        on = await c.put("/_sandbox/qr_session", json={"status": "CONNECTED"})
        status_on = await c.get("/status")
        again = await c.post("/send-message-to-group", json={"groupName": "g", "message": "m"})
        charges_on = (await sb.get("/_sandbox/ledger")).json()["total"]
    assert off.json() == {"status": "DISCONNECTED"}
    assert status_off.json() == {"status": "DISCONNECTED"}
    for refused in (send, group, add):
        assert refused.status_code == 409
        assert refused.json() == {"success": False, "status": "DISCONNECTED",
                                  "error": "WhatsApp session not connected"}  # fmt: skip
    assert qr.status_code == 200 and qr.json()["qr"]  # the pairing code is what fixes it
    assert charges_off == 0
    assert (on.status_code, status_on.json()) == (200, {"status": "CONNECTED"})
    assert again.status_code == 200 and charges_on == 1


async def test_qr_session_admin_names_a_bad_status() -> None:
    async with sandbox() as sb:
        bad = await sb.client.put("/_sandbox/qr_session", json={"status": "MAYBE"})
        missing = await sb.client.put("/_sandbox/qr_session", json={})
    assert (bad.status_code, bad.json()["field"]) == (400, "status")
    assert (missing.status_code, missing.json()["field"]) == (400, "status")


async def test_reset_pairs_the_qr_session_again() -> None:
    async with sandbox() as sb:
        await sb.client.put("/_sandbox/qr_session", json={"status": "DISCONNECTED"})
        await sb.client.post("/_sandbox/reset", json={})
        status = await sb.client.get("/status")
    assert status.json() == {"status": "CONNECTED"}
