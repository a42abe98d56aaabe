"""Subclients, deliveries (in America/Santiago time) and short links, in-process."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from tests.support.sandbox import Sandbox, sandbox, send_sms

pytestmark = pytest.mark.anyio

SANTIAGO = zoneinfo.ZoneInfo("America/Santiago")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def new_client(sb: Sandbox, name: str = "colegio") -> dict[str, Any]:
    r = await sb.post("/api_v3/clients", {"name": name})
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


async def test_client_crud() -> None:
    async with sandbox() as sb:
        created = await new_client(sb)
        cid = created["id_unique"]
        got = (await sb.get(f"/api_v3/clients/{cid}")).json()
        patched = (await sb.client.patch(f"/api_v3/clients/{cid}", json={"name": "test2"})).json()
        listing = (await sb.get("/api_v3/clients")).json()["data"]
    assert len(cid) == 8
    assert got["name"] == "colegio" and got["deleted"] == "F" and got["avatar"] is None
    assert patched["name"] == "test2"
    assert [c["id_unique"] for c in listing["clients"]] == [cid]
    assert {"free_sms_balance_by_country", "free_email_balance", "free_whatsapp_balance"} <= set(
        listing
    )
    chile = listing["free_sms_balance_by_country"][0]
    assert chile["id_country"] == 1 and chile["country_name"] == "Chile"


async def test_balance_moves_between_free_and_client() -> None:
    async with sandbox(sms_balances={1: 100}, email_balance=10) as sb:
        cid = (await new_client(sb))["id_unique"]
        add = await sb.post(
            f"/api_v3/clients/{cid}/add_balance", {"amount": 28, "product": 1, "id_country": 1}
        )
        add_email = await sb.post(f"/api_v3/clients/{cid}/add_balance", {"amount": 3, "product": 2})
        remove = await sb.post(
            f"/api_v3/clients/{cid}/remove_balance", {"amount": 8, "product": 1, "id_country": 1}
        )
        too_much = await sb.post(
            f"/api_v3/clients/{cid}/remove_balance", {"amount": 69, "product": 1, "id_country": 1}
        )
        beyond_free = await sb.post(
            f"/api_v3/clients/{cid}/add_balance", {"amount": 999, "product": 2}
        )
        no_country = await sb.post(
            f"/api_v3/clients/{cid}/add_balance", {"amount": 1, "product": 1}
        )
        bad_product = await sb.post(
            f"/api_v3/clients/{cid}/add_balance", {"amount": 1, "product": 9}
        )
    assert add.json() == {"message": "Balance added successfully"}
    assert add_email.status_code == 200
    assert remove.json() == {"message": "Balance removed successfully"}
    assert (too_much.status_code, too_much.json()["field"]) == (400, "amount")
    assert beyond_free.status_code == 402
    assert (no_country.status_code, no_country.json()["field"]) == (400, "id_country")
    assert (bad_product.status_code, bad_product.json()["field"]) == (400, "product")
    client = sb.state.clients.get(cid)
    assert client is not None
    assert client.balances.sms[1] == 20 and client.balances.email == 3
    assert sb.state.free.sms[1] == 80 and sb.state.free.email == 7


async def test_send_with_id_client_draws_on_the_client_only() -> None:
    async with sandbox(sms_balances={1: 100}) as sb:
        cid = (await new_client(sb))["id_unique"]
        await sb.post(
            f"/api_v3/clients/{cid}/add_balance", {"amount": 1, "product": 1, "id_country": 1}
        )
        # A subclient's SMS names the destination's country (the Subclient section).
        first = await send_sms(sb, id_client=cid, id_country=1)
        second = await sb.post(
            "/api_v3/sms/send_individual",
            {"dst_number": "56987688060", "sms_content": "x", "id_client": cid, "id_country": 1},
        )
        unknown = await sb.post(
            "/api_v3/sms/send_individual",
            {"dst_number": "56987688060", "sms_content": "x", "id_client": "nobody00",
             "id_country": 1},
        )  # fmt: skip
        ledger = (await sb.get("/_sandbox/ledger")).json()["charges"]
    assert first["status"] == "ESME_ROK"
    assert second.status_code == 402  # the client is empty although the free pool is not
    assert (unknown.status_code, unknown.json()["field"]) == (400, "id_client")
    assert sb.state.free.sms[1] == 99
    assert ledger[0]["id_client"] == cid


def santiago(text: str) -> float:
    naive = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    return naive.replace(tzinfo=SANTIAGO).timestamp()


async def test_delivery_fires_at_deliver_at_in_santiago_time() -> None:
    # T0 is 2025-01-15 09:00:00 in Santiago; schedule 10:30 local.
    async with sandbox(step_delay_s=1.0) as sb:
        created = await sb.post(
            "/api_v3/deliveries",
            {"delivery": {"name": "d", "deliver_at": "2025-01-15 10:30:00", "id_product": 1}},
        )
        did = created.json()["id"]
        sms = await send_sms(sb, id_delivery=did)
        before = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()
        sb.advance(santiago("2025-01-15 10:30:00") - sb.clock.now - 0.001)
        still = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()
        sb.advance(0.001)
        fired = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()
        delivery = (await sb.get(f"/api_v3/deliveries/{did}")).json()
        late = await sb.post(
            "/api_v3/sms/send_individual",
            {"dst_number": "56987688060", "sms_content": "x", "id_delivery": did},
        )
        patch = await sb.client.patch(f"/api_v3/deliveries/{did}", json={"delivery": {"name": "n"}})
        info = (await sb.get("/api_v3/sms/delivery_info", params={"delivery_id": did})).json()
    assert created.json()["status"] == "PROGRAMADO"
    assert sms["id_delivery"] == did
    assert before["platform_status"] == "PROGRAMADO"
    assert still["platform_status"] == "PROGRAMADO"
    assert fired["platform_status"] == "EN_COLA"
    assert delivery["status"] == "EJECUTADO"
    assert (late.status_code, late.json()["field"]) == (400, "id_delivery")
    assert patch.status_code == 400
    assert [m["id"] for m in info["messages"]] == [sms["id"]]
    assert len(sb.state.ledger) == 1  # charged at accept time, once


async def test_patch_reschedules_a_pending_delivery() -> None:
    async with sandbox() as sb:
        body = {"delivery": {"name": "d", "deliver_at": "2025-01-15 10:00:00", "id_product": 1}}
        did = (await sb.post("/api_v3/deliveries", body)).json()["id"]
        sms = await send_sms(sb, id_delivery=did)
        moved = await sb.client.patch(
            f"/api_v3/deliveries/{did}", json={"delivery": {"deliver_at": "2025-01-15 12:00:00"}}
        )
        sb.advance(santiago("2025-01-15 11:00:00") - sb.clock.now)
        at_eleven = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()["platform_status"]
        sb.advance(3600)
        at_noon = (await sb.get(f"/api_v3/sms/{sms['id']}")).json()["platform_status"]
    assert moved.json()["deliver_at"] == "2025-01-15 12:00:00"
    assert at_eleven == "PROGRAMADO"
    assert at_noon == "EN_COLA"


async def test_past_deliver_at_executes_at_once() -> None:
    async with sandbox() as sb:
        body = {"delivery": {"name": "old", "deliver_at": "2024-07-20 12:00:00", "id_product": 1}}
        r = await sb.post("/api_v3/deliveries", body)
    assert r.json()["status"] == "EJECUTADO"


async def test_delivery_validation() -> None:
    async with sandbox() as sb:
        bad_date = await sb.post(
            "/api_v3/deliveries",
            {"delivery": {"name": "d", "deliver_at": "tomorrow", "id_product": 1}},
        )
        bad_product = await sb.post(
            "/api_v3/deliveries",
            {"delivery": {"name": "d", "deliver_at": "2025-02-01 10:00:00", "id_product": 7}},
        )
        sms_delivery = await sb.post(
            "/api_v3/deliveries",
            {"delivery": {"name": "d", "deliver_at": "2025-02-01 10:00:00", "id_product": 1}},
        )
        email_into_sms_delivery = await sb.post(
            "/api_v3/email/send_single",
            {"dst_email": "a@b.cl", "src_email": "c@d.cl", "subject": "s", "email_content": "c",
             "id_delivery": sms_delivery.json()["id"]},
        )  # fmt: skip
    assert (bad_date.status_code, bad_date.json()["field"]) == (400, "deliver_at")
    assert (bad_product.status_code, bad_product.json()["field"]) == (400, "id_product")
    assert (email_into_sms_delivery.status_code, email_into_sms_delivery.json()["field"]) == (
        400,
        "id_delivery",
    )


async def test_short_links_count_clicks() -> None:
    async with sandbox() as sb:
        created = (await sb.post("/api_v3/short_link", {"link": "https://www.connectus.cl"})).json()
        code = created["short_link"].split("/")[1]
        follow = await sb.client.get(f"/_sandbox/s/{code}")
        by_id = (await sb.get(f"/api_v3/short_link/{created['id']}")).json()
        bad = await sb.post("/api_v3/short_link", {"link": "ftp://x"})
    assert created["short_link"].startswith("cnct.us/") and len(code) == 6
    assert follow.status_code == 302 and follow.headers["location"] == "https://www.connectus.cl"
    assert by_id == {"link": "https://www.connectus.cl", "clicks": 1}
    assert (bad.status_code, bad.json()["field"]) == (400, "link")


async def test_account_object_carries_hook_urls() -> None:
    async with sandbox() as sb:
        put = await sb.client.put(
            "/_sandbox/account", json={"sms_status_hook_url": "http://127.0.0.1:9/status"}
        )
        account = (await sb.get("/api_v3/account")).json()
    assert put.status_code == 200
    assert account["sms_status_hook_url"] == "http://127.0.0.1:9/status"
    assert account["sms_incoming_hook_url"] is None
    assert {"id_account", "purchases", "users", "src_numbers", "src_emails"} <= set(account)
