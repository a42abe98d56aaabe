"""Metrics, health, readiness, correlation ids in logs, the OpenAPI document, settings."""

from __future__ import annotations

import threading
from typing import Any

import fakeredis
import pytest
import redis
import typer
from typer.testing import CliRunner

from connectus_worker.cli.serve_cmd import serve
from connectus_worker.config import ConfigError, load_settings
from connectus_worker.service import build_app
from connectus_worker.service.app import READY_TIMEOUT_S
from tests.support.service import (
    SECRET,
    SMS,
    TOKEN,
    json_logs,
    log_lines,
    make_settings,
    problem,
    service,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_metrics_count_requests_by_route_template_and_status() -> None:
    async with service() as svc:
        job_id = (await svc.send(SMS)).json()["job_id"]
        await svc.client.get(f"/v1/messages/{job_id}", headers={"Authorization": f"Bearer {TOKEN}"})
        await svc.client.get("/v1/messages/other", headers={"Authorization": f"Bearer {TOKEN}"})
        await svc.send(SMS, Authorization="Bearer wrong-token-0123456789")
        await svc.status_hook({"id_sms": "a", "status": "ENTREGADO"})
        await svc.status_hook({"id_sms": "a", "status": "ENTREGADO"})
        await svc.status_hook({"id_sms": "b", "status": "NUEVO_ESTADO"})
        response = await svc.client.get("/metrics")
    text = response.text
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    for line in [
        'connectus_http_requests_total{method="POST",route="/v1/messages",status="202"} 1.0',
        'connectus_http_requests_total{method="POST",route="/v1/messages",status="401"} 1.0',
        'connectus_http_requests_total{method="GET",route="/v1/messages/{job_id}",status="200"} 1.0',
        'connectus_http_requests_total{method="GET",route="/v1/messages/{job_id}",status="404"} 1.0',
        'connectus_webhook_events_total{account="default",kind="sms_status",result="unmatched",status="ENTREGADO"} 1.0',
        'connectus_webhook_events_total{account="default",kind="sms_status",result="duplicate",status="ENTREGADO"} 1.0',
        # Unknown statuses share one label value: the label set stays bounded.
        'connectus_webhook_events_total{account="default",kind="sms_status",result="unmatched",status="other"} 1.0',
        "connectus_opt_outs_total 0.0",
        "connectus_opt_out_refusals_total 0.0",
        'connectus_http_request_duration_seconds_count{route="/v1/messages"} 2.0',
    ]:
        assert line in text, line
    assert job_id not in text  # ids never become label values


async def test_healthz_and_readyz_answer_when_redis_does() -> None:
    async with service() as svc:
        health = await svc.client.get("/healthz")
        ready = await svc.client.get("/readyz")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


class _BrokenRedis(fakeredis.FakeRedis):
    def ping(self, **kwargs: Any) -> Any:
        raise redis.ConnectionError("connection refused")


class _HungRedis(fakeredis.FakeRedis):
    release = threading.Event()

    def ping(self, **kwargs: Any) -> Any:
        self.release.wait(10)
        return True


async def test_readyz_is_503_when_redis_refuses() -> None:
    async with service(redis=_BrokenRedis(server=fakeredis.FakeServer())) as svc:
        ready = await svc.client.get("/readyz")
        health = await svc.client.get("/healthz")
    assert "ConnectionError" in problem(ready, 503)["detail"]
    assert health.status_code == 200  # liveness does not depend on Redis


async def test_readyz_gives_up_after_one_second_when_redis_hangs() -> None:
    hung = _HungRedis(server=fakeredis.FakeServer())
    try:
        async with service(redis=hung) as svc:
            ready = await svc.client.get("/readyz")
    finally:
        hung.release.set()
    assert f"within {READY_TIMEOUT_S} s" in problem(ready, 503)["detail"]
    assert ready.elapsed.total_seconds() < READY_TIMEOUT_S + 1.5


async def test_a_redis_outage_during_a_request_is_503_problem() -> None:
    class Down(fakeredis.FakeRedis):
        """Redis gone once the service is up: scripts and pipelines (the confirmed
        enqueue, durability) fail to connect."""

        def evalsha(self, *args: Any, **kwargs: Any) -> Any:
            raise redis.ConnectionError("down")

        def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
            pipe = super().pipeline(transaction, shard_hint)

            def execute(raise_on_error: bool = True) -> Any:
                raise redis.ConnectionError("down")

            pipe.execute = execute  # type: ignore[method-assign]
            return pipe

    async with service(redis=Down(server=fakeredis.FakeServer())) as svc:
        response = await svc.send(SMS)
    problem(response, 503)
    assert response.headers["retry-after"] == "1"


async def test_logs_carry_the_request_id_and_never_the_token_or_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with json_logs():
        async with service() as svc:
            await svc.send(SMS, **{"X-Request-ID": "trace-123"})
            await svc.status_hook({"id_sms": "z", "status": "EN_COLA"})
    err = capsys.readouterr().err
    lines = log_lines(err)
    access = [line for line in lines if line["event"] == "http request"]
    assert access[0]["request_id"] == "trace-123" and access[0]["route"] == "/v1/messages"
    accepted = next(line for line in lines if line["event"] == "message accepted")
    assert accepted["request_id"] == "trace-123"
    assert access[1]["request_id"] != "trace-123" and access[1]["status"] == 200
    assert TOKEN not in err and SECRET not in err and "hola" not in err


async def test_openapi_document_describes_the_real_routes() -> None:
    async with service() as svc:
        document = (await svc.client.get("/openapi.json")).json()
    routes = {route.path for route in svc.app.routes}  # type: ignore[attr-defined]
    assert set(document["paths"]) == routes - {"/openapi.json"}
    schemas = document["components"]["schemas"]
    variants = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["MessageRequest"]["oneOf"]}
    assert variants == {"SmsMessage", "OtpMessage", "EmailMessage", "OtpEmailMessage",
                        "WhatsappMessage", "WhatsappQrMessage",
                        "WhatsappQrGroupMessage"}  # fmt: skip
    assert "delivery_status" in schemas["JobRecord"]["properties"]
    assert schemas["SmsMessage"]["additionalProperties"] is False
    assert schemas["SmsMessage"]["properties"]["sms_content"]["maxLength"] == 1600
    post = document["paths"]["/webhooks/sms-status"]["post"]
    assert post["security"] == [{"webhookToken": []}]


# --- settings and start-up -------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WEBHOOK_SECRET": SECRET}, "INTAKE_TOKENS"),
        ({"INTAKE_TOKENS": TOKEN}, "WEBHOOK_SECRET"),
        ({"INTAKE_TOKENS": TOKEN, "WEBHOOK_AUTH": "basic"}, "WEBHOOK_BASIC_USER"),
        ({"INTAKE_TOKENS": TOKEN, "WEBHOOK_AUTH": "basic", "WEBHOOK_BASIC_USER": "u"},
         "WEBHOOK_BASIC_PASSWORD"),
    ],
)  # fmt: skip
def test_the_service_refuses_to_start_without_its_credentials(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_app(load_settings(env), redis_client=fakeredis.FakeRedis())
    assert info.value.variable == variable


def test_serve_command_checks_settings_before_binding() -> None:
    app = typer.Typer()
    app.command("serve")(serve)

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = lambda: load_settings({})

    result = CliRunner().invoke(app, ["serve", "--port", "8089"])
    assert isinstance(result.exception, ConfigError)
    assert result.exception.variable == "INTAKE_TOKENS"


def test_service_secrets_never_appear_in_settings_repr() -> None:
    settings = make_settings(
        WEBHOOK_AUTH="basic", WEBHOOK_BASIC_USER="connectus", WEBHOOK_BASIC_PASSWORD="pw-0123456789"
    )
    for text in (repr(settings), str(settings)):
        assert TOKEN not in text and SECRET not in text and "pw-0123456789" not in text
    assert settings.intake_token_values[0] == TOKEN
    assert settings.opt_out_keyword_set == {"stop", "baja", "salir"}


def test_a_bad_token_is_reported_by_position_not_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"INTAKE_TOKENS": f"{TOKEN}, short-secret-x"})
    assert "token #2" in str(info.value) and "short-secret-x" not in str(info.value)
