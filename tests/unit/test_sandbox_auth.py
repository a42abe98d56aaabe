"""Auth, 400/404 answers and routing of the sandbox, in-process."""

from __future__ import annotations

import base64

import pytest

from tests.support.sandbox import sandbox, send_sms

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


DOCUMENTED_GETS = [
    "/api_v3/account",
    "/api_v3/clients",
    "/api_v3/email/balance",
    "/api_v1/check_balance",
    "/api_v1/check_email_balance",
    "/qr",
    "/status",
]


@pytest.mark.parametrize("path", DOCUMENTED_GETS)
async def test_documented_calls_need_credentials(path: str) -> None:
    async with sandbox() as sb:
        missing = await sb.client.get(path, auth=None)
        wrong = await sb.client.get(path, auth=("sandbox", "nope"))
        right = await sb.get(path)
    assert missing.status_code == 401
    assert missing.json() == {"error": "You must submit an API key"}
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Invalid API key"}
    assert right.status_code == 200


async def test_credentials_come_from_the_config() -> None:
    async with sandbox(api_user="acct", api_key="k3y") as sb:
        default = await sb.get("/api_v3/account")
        own = await sb.client.get("/api_v3/account", auth=("acct", "k3y"))
    assert default.status_code == 401
    assert own.status_code == 200
    assert own.json()["id_account"] == "acct"


async def test_qr_api_takes_a_bearer_token_and_v3_does_not() -> None:
    async with sandbox() as sb:
        bearer = {"Authorization": "Bearer sandbox-key"}
        qr = await sb.client.get("/status", auth=None, headers=bearer)
        v3 = await sb.client.get("/api_v3/account", auth=None, headers=bearer)
        bad = await sb.client.get("/status", auth=None, headers={"Authorization": "Bearer x"})
    assert qr.status_code == 200
    assert qr.json() == {"status": "CONNECTED"}
    assert v3.status_code == 401
    assert bad.status_code == 401


async def test_basic_scheme_is_case_insensitive() -> None:
    async with sandbox() as sb:
        token = base64.b64encode(b"sandbox:sandbox-key").decode()
        r = await sb.client.get(
            "/api_v3/account", auth=None, headers={"authorization": f"basic {token}"}
        )
    assert r.status_code == 200


async def test_admin_api_needs_no_auth() -> None:
    async with sandbox() as sb:
        r = await sb.client.get("/_sandbox/health", auth=None)
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_400_names_the_field() -> None:
    async with sandbox() as sb:
        no_dst = await sb.post("/api_v3/sms/send_individual", {"sms_content": "x"})
        no_content = await sb.post("/api_v3/sms/send_individual", {"dst_number": "56987688060"})
        bad_dst = await sb.post(
            "/api_v3/sms/send_individual", {"dst_number": "abc", "sms_content": "x"}
        )
        not_json = await sb.client.post("/api_v3/sms/send_individual", content=b"{nope")
    assert (no_dst.status_code, no_dst.json()["field"]) == (400, "dst_number")
    assert (no_content.status_code, no_content.json()["field"]) == (400, "sms_content")
    assert (bad_dst.status_code, bad_dst.json()["field"]) == (400, "dst_number")
    assert (not_json.status_code, not_json.json()["field"]) == (400, "body")


@pytest.mark.parametrize(
    "path",
    [
        "/api_v3/sms/00000000000000000000000000000000",
        "/api_v3/email/nope",
        "/api_v3/clients/zzzzzzzz",
        "/api_v3/deliveries/0a45704eca394c3fbf6eb8eaf7950b5e",
        "/api_v3/short_link/999",
        "/api_v3/sms/delivery_info?delivery_id=0a45704eca394c3fbf6eb8eaf7950b5e",
        "/api_v3/whatsapp/status?message_id=0a3b773f79cf4f72842ed9818c89c523",
        "/api_v1/check_sms_status?id_sms=6bfb1d9d4c6640bab93f23cfdbd5750f",
        "/api_v1/check_delivery_status?id_delivery=0a45704eca394c3fbf6eb8eaf7950b5e",
        "/api_v1/check_email_status_events?id_email=6bfb1d9d4c6640bab93f23cfdbd5750f",
    ],
)
async def test_unknown_ids_are_404(path: str) -> None:
    async with sandbox() as sb:
        r = await sb.get(path)
    assert r.status_code == 404
    assert r.json() == {"error": "Not found"}


async def test_an_email_id_is_not_an_sms_id() -> None:
    async with sandbox() as sb:
        sms_id = (await send_sms(sb))["id"]
        as_email = await sb.get(f"/api_v3/email/{sms_id}")
        as_sms = await sb.get(f"/api_v3/sms/{sms_id}")
    assert as_email.status_code == 404
    assert as_sms.status_code == 200


async def test_missing_lookup_parameter_is_400_not_404() -> None:
    async with sandbox() as sb:
        r = await sb.get("/api_v3/sms/delivery_info")
    assert r.status_code == 400
    assert r.json()["field"] == "delivery_id"


async def test_unknown_route_is_json_404() -> None:
    async with sandbox() as sb:
        r = await sb.get("/api_v3/nothing_here")
    assert r.status_code == 404
    assert r.json() == {"error": "Not found"}
