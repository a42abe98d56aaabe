"""The sandbox serving several accounts: each its own balances, ledger and limit,
picked by the request's credentials (in-process, no network)."""

from __future__ import annotations

import httpx
import pytest

from sandbox.app import build_app
from sandbox.config import FaultConfig, SandboxConfig

pytestmark = pytest.mark.anyio
SMS = {"dst_number": "56987654321", "sms_content": "hola"}
B = ("brand_b", "key-b")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_one_user_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="no user twice"):
        SandboxConfig(accounts=(("sandbox", "other-key"),))


async def test_each_account_has_its_own_ledger_balance_and_limit() -> None:
    config = SandboxConfig(accounts=(B,), faults=FaultConfig(limit_per_s=1, limit_burst=1))
    app = build_app(config)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://sb", auth=("sandbox", "sandbox-key")) as a,
        httpx.AsyncClient(transport=transport, base_url="http://sb", auth=B) as b,
        httpx.AsyncClient(transport=transport, base_url="http://sb") as admin,
        httpx.AsyncClient(transport=transport, base_url="http://sb",
                          auth=("brand_b", "sandbox-key")) as wrong,
    ):  # fmt: skip
        # One token per account: A's second send is throttled, B's first still goes.
        a1 = (await a.post("/api_v3/sms/send_individual", json=SMS)).json()["status"]
        a2 = (await a.post("/api_v3/sms/send_individual", json=SMS)).json()["status"]
        b1 = (await b.post("/api_v3/sms/send_individual", json=SMS)).json()["status"]
        crossed = await wrong.post("/api_v3/sms/send_individual", json=SMS)
        await admin.put("/_sandbox/balance", json={"product": "email", "amount": 7},
                        headers={"X-Sandbox-Account": "brand_b"})  # fmt: skip
        a_balance = (await a.get("/api_v3/email/balance")).json()["balance"]
        b_balance = (await b.get("/api_v3/email/balance")).json()["balance"]
        a_ledger = (await admin.get("/_sandbox/ledger")).json()["total"]
        b_ledger = (await admin.get("/_sandbox/ledger", headers={"X-Sandbox-Account": "brand_b"})
                    ).json()["total"]  # fmt: skip
    assert (a1, a2, b1) == ("ESME_ROK", "ESME_RTHROTTLED", "ESME_ROK")
    assert crossed.status_code == 401
    assert (a_ledger, b_ledger) == (1, 1)
    assert b_balance == 7 and a_balance != 7
