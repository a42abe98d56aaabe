"""Connectus webhooks: auth, validation, dedupe, record updates, stream, opt-out."""

from __future__ import annotations

import base64
from typing import Any

import fakeredis
import pytest

from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.optout import is_opted_out
from connectus_worker.service.events import EventRecorder, events_key
from tests.support.service import (
    E164,
    SECRET,
    SMS,
    invalid_params,
    json_logs,
    log_lines,
    problem,
    service,
)

pytestmark = pytest.mark.anyio

INCOMING = {
    "id_sms": "in-1",
    "dst_number": "4374",
    "src_number": "+56 9 8765 4321",
    "src_provider": "entel",
    "sms_content": "Hola, quiero saber mi saldo",
    "sms_content_binary": "486f6c61",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- auth ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/sms-status", "/webhooks/sms-incoming"])
@pytest.mark.parametrize("token", [None, "", "wrong-0123456789abcdef", SECRET + "x", SECRET[:-1]])
async def test_token_mode_refuses_a_missing_or_wrong_token(path: str, token: str | None) -> None:
    params = {} if token is None else {"token": token}
    async with service() as svc:
        response = await svc.client.post(
            path, params=params, json={"id_sms": "1", "status": "ENTREGADO"}
        )
        assert svc.redis.dbsize() == 0
    problem(response, 401)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BASIC = {"WEBHOOK_AUTH": "basic", "WEBHOOK_BASIC_USER": "connectus",
         "WEBHOOK_BASIC_PASSWORD": "correct-horse-battery"}  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [{}, _basic("connectus", "wrong-password!"), _basic("other", "correct-horse-battery"),
     {"Authorization": "Basic !!!notbase64"}, {"Authorization": "Bearer correct-horse-battery"}],
)  # fmt: skip
async def test_basic_mode_refuses_wrong_credentials(headers: dict[str, str]) -> None:
    async with service(**BASIC) as svc:
        # The URL token is not accepted in basic mode.
        response = await svc.client.post(
            "/webhooks/sms-status",
            params={"token": SECRET},
            json={"id_sms": "1", "status": "ENTREGADO"},
            headers=headers,
        )
    assert problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_basic_mode_accepts_the_configured_credentials() -> None:
    async with service(**BASIC) as svc:
        response = await svc.client.post(
            "/webhooks/sms-status",
            json={"id_sms": "1", "status": "ENTREGADO"},
            headers=_basic("connectus", "correct-horse-battery"),
        )
    assert response.status_code == 200, response.text


# --- validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "ENTREGADO"}, "id_sms"),
        ({"id_sms": "1"}, "status"),
        ({"id_sms": "1", "status": "entregado; DROP"}, "status"),
        ({"id_sms": "a/b", "status": "ENTREGADO"}, "id_sms"),
        ({"id_sms": "x" * 65, "status": "ENTREGADO"}, "id_sms"),
        ({"id_sms": ["1"], "status": "ENTREGADO"}, "id_sms"),
    ],
)
async def test_bad_status_payloads_are_422_and_record_nothing(
    body: dict[str, Any], field: str
) -> None:
    async with service() as svc:
        response = await svc.status_hook(body)
        assert svc.events() == []
    assert field in invalid_params(response)


async def test_bad_incoming_payload_names_the_fields() -> None:
    async with service() as svc:
        response = await svc.incoming_hook({"id_sms": "1", "src_number": "56 9 x"})
    assert {"dst_number", "sms_content"} <= set(invalid_params(response))


async def test_webhook_bodies_are_bounded() -> None:
    async with service(WEBHOOK_MAX_BODY_BYTES="2048") as svc:
        response = await svc.incoming_hook({**INCOMING, "sms_content": "x" * 3000})
    problem(response, 413)


async def test_unknown_extra_fields_from_connectus_are_tolerated() -> None:
    async with service() as svc:
        response = await svc.status_hook({"id_sms": 77, "status": "EN_COLA", "new_field": 1})
        (event,) = svc.events()
    assert response.json() == {"result": "recorded"}
    assert event["id_sms"] == "77"  # an integer id is kept as its digits


# --- status updates -------------------------------------------------------


async def test_status_updates_the_job_record_and_publishes_an_event() -> None:
    async with service() as svc:
        sent = await svc.send(SMS, **{"X-Request-ID": "req-7"})
        job_id = sent.json()["job_id"]
        svc.mark_sent(job_id, "cx-1")
        response = await svc.status_hook({"id_sms": "cx-1", "status": "ENTREGADO"})
        record = (
            await svc.client.get(
                f"/v1/messages/{job_id}",
                headers={"Authorization": f"Bearer {svc.settings.intake_token_values[0]}"},
            )
        ).json()
        events = svc.events()
    assert response.json() == {"result": "recorded"}
    assert record["delivery_status"] == "ENTREGADO"
    assert record["delivery_status_at"] is not None and record["state"] == "sent"
    (event,) = events
    assert event == {
        "v": "1", "kind": "sms_status", "id_sms": "cx-1", "status": "ENTREGADO",
        "job_id": job_id, "correlation_id": "req-7", "received_at": event["received_at"],
        "request_id": response.headers["x-request-id"],
    }  # fmt: skip
    assert event["received_at"].isdigit()


async def test_a_duplicate_status_is_acknowledged_and_changes_nothing() -> None:
    async with service() as svc:
        job_id = (await svc.send(SMS)).json()["job_id"]
        svc.mark_sent(job_id, "cx-2")
        first = await svc.status_hook({"id_sms": "cx-2", "status": "ENVIADO_A_CARRIER"})
        at = svc.store.get(job_id).delivery_status_at  # type: ignore[union-attr]
        again = await svc.status_hook({"id_sms": "cx-2", "status": "ENVIADO_A_CARRIER"})
        record = svc.store.get(job_id)
        events = svc.events()
    assert first.json() == {"result": "recorded"}
    assert again.status_code == 200 and again.json() == {"result": "duplicate"}
    assert record is not None and record.delivery_status_at == at
    assert len(events) == 1


async def test_a_late_earlier_status_does_not_overwrite_a_final_one() -> None:
    async with service() as svc:
        job_id = (await svc.send(SMS)).json()["job_id"]
        svc.mark_sent(job_id, "cx-3")
        await svc.status_hook({"id_sms": "cx-3", "status": "ENTREGADO"})
        await svc.status_hook({"id_sms": "cx-3", "status": "EN_COLA"})  # arrived out of order
        record = svc.store.get(job_id)
        statuses = [event["status"] for event in svc.events()]
    assert record is not None and record.delivery_status == "ENTREGADO"
    assert statuses == ["ENTREGADO", "EN_COLA"]  # consumers still see both


async def test_a_status_for_an_unknown_message_is_published_unmatched() -> None:
    async with service() as svc:
        response = await svc.status_hook({"id_sms": "never-sent", "status": "NO_ENTREGABLE"})
        (event,) = svc.events()
        jobs = svc.redis.keys(f"{svc.settings.key_prefix}:job:*")
        metrics = (await svc.client.get("/metrics")).text
    assert response.json() == {"result": "recorded"}
    assert event["job_id"] == "" and event["status"] == "NO_ENTREGABLE"
    assert jobs == []  # no half-made record
    assert (
        'connectus_webhook_events_total{account="default",kind="sms_status",result="unmatched",status="NO_ENTREGABLE"} 1.0'
        in metrics
    )


def test_the_stream_is_capped() -> None:
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    keys = Keys("cap")
    recorder = EventRecorder(redis, keys, seen_ttl_s=60, maxlen=1_000, hash_key=b"k")
    for i in range(1_500):
        recorder.sms_status(id_sms=f"m{i}", status="EN_COLA", job_id=None, now_ms=i, request_id="r")
    length = redis.xlen(events_key(keys))
    assert 1_000 <= length < 1_500  # MAXLEN ~ trims in whole nodes


# --- incoming and opt-out -----------------------------------------------------


async def test_incoming_sms_is_published_with_its_content_but_not_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with json_logs():
        async with service() as svc:
            response = await svc.incoming_hook(INCOMING)
            duplicate = await svc.incoming_hook(INCOMING)
            events = svc.events()
            opted = is_opted_out(svc.redis, svc.keys, E164)
    assert response.json() == {"result": "recorded"}
    assert duplicate.json() == {"result": "duplicate"}
    (event,) = events
    assert event["kind"] == "sms_incoming" and event["sms_content"] == INCOMING["sms_content"]
    assert event["src_number"] == E164 and event["dst_number"] == "4374"
    assert event["opt_out"] == "0" and not opted
    err = capsys.readouterr().err
    lines = log_lines(err)
    assert any(line["event"] == "incoming sms webhook" for line in lines)
    assert "saldo" not in err and E164 not in err and SECRET not in err


@pytest.mark.parametrize("content", ["STOP", " stop ", "Baja", "salir\n", "\tSALIR"])
async def test_an_opt_out_keyword_blocks_marketing_but_not_otp_or_transactional(
    content: str,
) -> None:
    async with service() as svc:
        response = await svc.incoming_hook({**INCOMING, "sms_content": content})
        marketing = await svc.send({**SMS, "priority": "bulk"})
        qr = await svc.send(
            {"type": "whatsapp_qr", "number": E164, "message": "promo", "priority": "bulk"}
        )
        transactional = await svc.send({**SMS, "sms_content": "su pedido llegó"})
        otp = await svc.send({"type": "otp", "dst_number": E164, "sms_content": "code 1"})
        (event,) = svc.events()
        metrics = (await svc.client.get("/metrics")).text
    assert response.json() == {"result": "recorded"} and event["opt_out"] == "1"
    assert invalid_params(marketing) == {"dst_number": "opted out of marketing messages"}
    assert invalid_params(qr) == {"number": "opted out of marketing messages"}
    assert transactional.status_code == 202 and otp.status_code == 202
    assert "connectus_opt_outs_total 1.0" in metrics
    assert "connectus_opt_out_refusals_total 2.0" in metrics


@pytest.mark.parametrize("content", ["STOP please", "no", "STOPP", "BAJA BAJA"])
async def test_other_texts_do_not_opt_out(content: str) -> None:
    async with service() as svc:
        await svc.incoming_hook({**INCOMING, "sms_content": content})
        marketing = await svc.send({**SMS, "priority": "bulk"})
    assert marketing.status_code == 202


async def test_opt_out_keywords_are_configurable() -> None:
    async with service(OPT_OUT_KEYWORDS="FIN, CANCELAR") as svc:
        await svc.incoming_hook({**INCOMING, "sms_content": "cancelar"})
        await svc.incoming_hook(
            {**INCOMING, "id_sms": "in-2", "src_number": "56987654322", "sms_content": "STOP"}
        )
        first = is_opted_out(svc.redis, svc.keys, E164)
        second = is_opted_out(svc.redis, svc.keys, "56987654322")
    assert first and not second
