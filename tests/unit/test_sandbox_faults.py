"""Seeded fault injection, in-process."""

from __future__ import annotations

from collections import Counter

import pytest

from sandbox import faults as faults_module
from sandbox.config import FaultConfig
from sandbox.faults import ConnectionDropped, Faults
from tests.support.sandbox import sandbox, send_sms

pytestmark = pytest.mark.anyio

SMS = {"dst_number": "56987688060", "sms_content": "x"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_same_seed_same_draws() -> None:
    config = FaultConfig(error_rate=0.2, rate_429=0.2, throttle_rate=0.1, drop_rate=0.1, seed=3)
    a, b = Faults(config), Faults(config)
    assert [a.draw() for _ in range(200)] == [b.draw() for _ in range(200)]


def test_draw_shares_follow_the_rates() -> None:
    f = Faults(FaultConfig(error_rate=0.1, rate_429=0.2, throttle_rate=0.3, drop_rate=0.1, seed=1))
    counts = Counter(f.draw() for _ in range(10_000))
    assert 800 < counts[faults_module.SERVER_ERROR] < 1200
    assert 1700 < counts[faults_module.TOO_MANY] < 2300
    assert 2700 < counts[faults_module.THROTTLED] < 3300
    assert 800 < counts[faults_module.DROP] < 1200


def test_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="add up"):
        FaultConfig(error_rate=0.6, drop_rate=0.6)


async def test_server_errors_are_a_mix_of_500_502_503_504() -> None:
    async with sandbox(faults=FaultConfig(error_rate=1.0, ambiguous_charge_rate=0.0, seed=5)) as sb:
        codes = Counter()
        for _ in range(200):
            r = await sb.post("/api_v3/sms/send_individual", SMS)
            codes[r.status_code] += 1
    assert set(codes) == {500, 502, 503, 504}
    assert len(sb.state.ledger) == 0  # nothing charged when ambiguous_charge_rate is 0


async def test_ambiguous_500_504_may_have_charged() -> None:
    async with sandbox(faults=FaultConfig(error_rate=1.0, ambiguous_charge_rate=1.0, seed=5)) as sb:
        codes = [
            (await sb.post("/api_v3/sms/send_individual", SMS)).status_code for _ in range(100)
        ]
    charged = sum(1 for c in codes if c in (500, 504))
    assert charged > 0
    assert len(sb.state.ledger) == charged  # 502/503 never charge


async def test_429_carries_retry_after() -> None:
    async with sandbox(faults=FaultConfig(rate_429=1.0, retry_after_s=7)) as sb:
        r = await sb.post("/api_v3/sms/send_individual", SMS)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json() == {"error": "Too many requests"}
    assert len(sb.state.ledger) == 0


async def test_throttle_is_an_smpp_answer_on_v3_sms_and_429_elsewhere() -> None:
    async with sandbox(faults=FaultConfig(throttle_rate=1.0)) as sb:
        sms = await sb.post("/api_v3/sms/send_individual", SMS)
        email = await sb.post(
            "/api_v3/email/send_single",
            {"dst_email": "a@b.cl", "src_email": "c@d.cl", "subject": "s", "email_content": "c"},
        )
    assert (sms.status_code, sms.json()) == (200, {"status": "ESME_RTHROTTLED"})
    assert email.status_code == 429
    assert len(sb.state.ledger) == 0


async def test_dropped_after_accept_is_charged_but_never_answered() -> None:
    async with sandbox(faults=FaultConfig(drop_rate=1.0)) as sb:
        with pytest.raises(ConnectionDropped):
            await sb.post("/api_v3/sms/send_individual", SMS)
        ledger = (await sb.get("/_sandbox/ledger")).json()
        stats = (await sb.get("/_sandbox/stats")).json()
    assert ledger["total"] == 1
    assert ledger["charges"][0]["dst"] == "56987688060"
    assert stats["requests"]["POST /api_v3/sms/send_individual"] == {"dropped": 1}


async def test_lookups_are_reliable_unless_asked() -> None:
    async with sandbox(faults=FaultConfig(error_rate=1.0)) as sb:
        lookup = await sb.get("/api_v3/account")
        await sb.client.put("/_sandbox/faults", json={"applies_to": "all"})
        faulted = await sb.get("/api_v3/account")
        admin = await sb.get("/_sandbox/health")
    assert lookup.status_code == 200
    assert faulted.status_code >= 500
    assert admin.status_code == 200  # the admin API is never faulted


async def test_faults_change_at_run_time() -> None:
    async with sandbox() as sb:
        ok = await sb.post("/api_v3/sms/send_individual", SMS)
        put = await sb.client.put("/_sandbox/faults", json={"rate_429": 1.0, "retry_after_s": 2})
        limited = await sb.post("/api_v3/sms/send_individual", SMS)
        got = (await sb.get("/_sandbox/faults")).json()
        bad_key = await sb.client.put("/_sandbox/faults", json={"nope": 1})
        bad_value = await sb.client.put("/_sandbox/faults", json={"drop_rate": 3})
        await sb.client.put("/_sandbox/faults", json={"rate_429": 0.0})
        again = await sb.post("/api_v3/sms/send_individual", SMS)
    assert ok.status_code == 200 and limited.status_code == 429 and again.status_code == 200
    assert put.json()["rate_429"] == 1.0 and got["retry_after_s"] == 2
    assert (bad_key.status_code, bad_key.json()["field"]) == (400, "nope")
    assert bad_value.status_code == 400


async def test_latency_sleeps_the_configured_milliseconds() -> None:
    slept: list[float] = []
    in_flight: list[int] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        in_flight.append((await sb.get("/_sandbox/stats")).json()["sends_in_flight"])

    async with sandbox(faults=FaultConfig(latency_ms=50, jitter_ms=10, seed=2)) as sb:
        sb.rt.faults.sleep = fake_sleep
        await send_sms(sb)
        await sb.get("/api_v3/account")  # a lookup: no latency by default
        after = (await sb.get("/_sandbox/stats")).json()["sends_in_flight"]
    assert len(slept) == 1
    assert 0.040 <= slept[0] <= 0.060
    assert in_flight == [1] and after == 0  # the send was being answered while it slept


async def test_reset_restores_the_start_up_faults_and_state() -> None:
    async with sandbox(sms_balances={1: 5}) as sb:
        await send_sms(sb)
        await sb.client.put("/_sandbox/faults", json={"rate_429": 1.0})
        reset = await sb.post("/_sandbox/reset")
        after = await sb.post("/api_v3/sms/send_individual", SMS)
    assert reset.json() == {"reset": True}
    assert after.status_code == 200
    assert sb.state.free.sms[1] == 4
    assert len(sb.state.ledger) == 1


async def test_faults_can_hit_one_api_host_only() -> None:
    """``apis`` fails one Connectus host (v3, v1, QR) while the others answer."""
    async with sandbox(faults=FaultConfig(error_rate=1.0, ambiguous_charge_rate=0.0)) as sb:
        put = await sb.client.put("/_sandbox/faults", json={"apis": ["qr"]})
        qr = await sb.post("/send", {"number": "56987688060", "message": "Hola"})
        v3 = await sb.post("/api_v3/sms/send_individual", SMS)
        v1 = await sb.client.post(
            "/api_v1/send_sms", params={"dst_number": "56987688060", "sms_content": "x"}
        )
        bad = await sb.client.put("/_sandbox/faults", json={"apis": ["v2"]})
        as_text = await sb.client.put("/_sandbox/faults", json={"apis": "qr"})
        got = (await sb.get("/_sandbox/faults")).json()
    assert put.json()["apis"] == ["qr"] and got["apis"] == ["qr"]
    assert qr.status_code >= 500
    assert (v3.status_code, v1.status_code) == (200, 200)
    assert bad.status_code == 400 and "apis" in bad.json()["error"]
    assert as_text.status_code == 400


def test_fault_apis_are_validated_by_name() -> None:
    from sandbox.config import parse_apis

    assert parse_apis("v3, qr") == ("v3", "qr")
    with pytest.raises(ValueError, match="apis: 'v2'"):
        parse_apis("v3,v2")
    with pytest.raises(ValueError, match="apis"):
        FaultConfig(apis=("nope",))


async def test_an_smpp_refusal_answers_sms_sends_only_and_charges_nothing() -> None:
    refusals = FaultConfig(refusal_rate=1.0, refusal_status="ESME_RPROHIBITED")
    async with sandbox(faults=refusals) as sb:
        sms = await sb.post("/api_v3/sms/send_individual", SMS)
        otp = await sb.post("/api_v3/sms/send_otp", SMS)
        email = await sb.post(
            "/api_v3/email/send_single",
            {"dst_email": "a@b.cl", "src_email": "c@d.cl", "subject": "s", "email_content": "c"},
        )
        bad = await sb.client.put("/_sandbox/faults", json={"refusal_status": "ESME_ROK"})
        ledger = (await sb.get("/_sandbox/ledger")).json()["charges"]
    assert sms.json() == {"status": "ESME_RPROHIBITED"} == otp.json()
    assert email.status_code == 200 and [c["product"] for c in ledger] == ["email"]
    assert bad.status_code == 400 and "refusal_status" in bad.json()["error"]
