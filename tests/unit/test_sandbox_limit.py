"""The sandbox's provider-side rate limit, in-process with a hand-moved clock."""

from __future__ import annotations

import pytest

from sandbox.config import FaultConfig
from tests.support.sandbox import sandbox

pytestmark = pytest.mark.anyio

SMS = {"dst_number": "56987688060", "sms_content": "x"}
EMAIL = {"dst_email": "ana@example.com", "subject": "s", "email_content": "<p>x</p>",
         "src_email": "f@example.com"}  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_sms_past_the_limit_is_throttled_and_not_charged() -> None:
    async with sandbox(faults=FaultConfig(limit_per_s=5, limit_burst=3)) as sb:
        answers = [
            (await sb.post("/api_v3/sms/send_individual", SMS)).json()["status"] for _ in range(5)
        ]
        assert answers == ["ESME_ROK"] * 3 + ["ESME_RTHROTTLED"] * 2
        assert len(sb.state.ledger) == 3
        stats = (await sb.get("/_sandbox/stats")).json()["requests"]
        assert stats["POST /api_v3/sms/send_individual"] == {"200": 3, "limited": 2}
        sb.clock.advance(seconds=0.2)  # one token at 5/s
        ok = (await sb.post("/api_v3/sms/send_individual", SMS)).json()["status"]
        again = (await sb.post("/api_v3/sms/send_individual", SMS)).json()["status"]
        assert (ok, again) == ("ESME_ROK", "ESME_RTHROTTLED")
        assert len(sb.state.ledger) == 4


async def test_other_products_get_429_with_retry_after_and_own_bucket() -> None:
    async with sandbox(faults=FaultConfig(limit_per_s=0.25, limit_burst=1)) as sb:
        first = await sb.post("/api_v3/email/send_single", EMAIL)
        second = await sb.post("/api_v3/email/send_single", EMAIL)
        assert first.status_code == 200, first.text
        assert second.status_code == 429
        assert second.headers["retry-after"] == "4"  # 1 token at 0.25/s, whole seconds
        # SMS has its own bucket: untouched by the e-mails.
        sms = await sb.post("/api_v3/sms/send_individual", SMS)
        assert sms.json()["status"] == "ESME_ROK"
        assert len(sb.state.ledger) == 2


async def test_limit_is_set_at_run_time_and_lookups_are_not_limited() -> None:
    async with sandbox() as sb:
        put = await sb.client.put("/_sandbox/faults", json={"limit_per_s": 1, "limit_burst": 1})
        assert put.status_code == 200
        assert put.json()["limit_per_s"] == 1
        ok = (await sb.post("/api_v3/sms/send_individual", SMS)).json()
        throttled = (await sb.post("/api_v3/sms/send_individual", SMS)).json()
        assert (ok["status"], throttled["status"]) == ("ESME_ROK", "ESME_RTHROTTLED")
        for _ in range(3):
            assert (await sb.get(f"/api_v3/sms/{ok['id']}")).status_code == 200
        await sb.client.put("/_sandbox/faults", json={"limit_per_s": 0})
        statuses = [
            (await sb.post("/api_v3/sms/send_individual", SMS)).json()["status"] for _ in range(10)
        ]
        assert statuses == ["ESME_ROK"] * 10


async def test_bad_limit_is_a_400_naming_it() -> None:
    async with sandbox() as sb:
        negative = await sb.client.put("/_sandbox/faults", json={"limit_per_s": -1})
        burst = await sb.client.put("/_sandbox/faults", json={"limit_burst": -2})
        assert negative.status_code == 400 and "limit_per_s" in negative.text
        assert burst.status_code == 400 and "limit_burst" in burst.text
