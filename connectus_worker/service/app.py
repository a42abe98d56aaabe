"""``build_app(settings)``: the ASGI service (FastAPI, on Starlette).

Routes: the operator console (``/ui``, :mod:`service.console`, when ``CONSOLE_USERS``
is set), intake (``/v1/messages``, ``/v1/campaigns``), their control
(``.../cancel``, ``.../pause``, ``.../resume``: :mod:`service.control`), Connectus webhooks
(``/webhooks/...``), ``/metrics``, ``/healthz``, ``/readyz`` and
``/openapi.json`` (FastAPI's, completed by :mod:`service.openapi`). Every error
is problem+json (:mod:`service.problems`), FastAPI's own ones too. Settings
are read once by the caller and passed in; so is the Redis client in tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import redis
import structlog
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from connectus_worker.config import Settings
from connectus_worker.config.accounts import ACCOUNT_PATTERN
from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.models import JobRecord
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaign_control import CampaignControl
from connectus_worker.producers.campaigns import CampaignProducer
from connectus_worker.redis import connect
from connectus_worker.service.auth import BearerAuth, WebhookAuth
from connectus_worker.service.campaign_schemas import CampaignAccepted, CampaignStatusOut
from connectus_worker.service.campaigns import CAMPAIGN_ID_PATTERN, CampaignIntake
from connectus_worker.service.console import build_console
from connectus_worker.service.control import (
    CampaignControlled,
    Control,
    MessageControlled,
    conflict_problems,
)
from connectus_worker.service.events import EventRecorder
from connectus_worker.service.idempotency import HttpIdempotency
from connectus_worker.service.intake import JOB_ID_PATTERN, Intake
from connectus_worker.service.metrics import Metrics
from connectus_worker.service.middleware import RequestContextMiddleware
from connectus_worker.service.openapi import (
    ACCEPTED_HEADERS,
    install_openapi,
    ok,
    operation,
    problems,
)
from connectus_worker.service.optout_schemas import OptOutHistory, OptOutPage, OptOutState
from connectus_worker.service.optouts import OptOuts
from connectus_worker.service.problems import ProblemError, problem_response, response_for
from connectus_worker.service.schemas import Accepted, WebhookAck
from connectus_worker.service.webhooks import Webhooks
from connectus_worker.worker.balance_snapshot import SnapshotBalanceLookup

log = structlog.get_logger("connectus_worker.service.app")

#: /readyz answers 503 if Redis has not answered PING within this many seconds.
READY_TIMEOUT_S = 1.0


class Status(BaseModel):
    status: str


def build_app(settings: Settings, *, redis_client: redis.Redis | None = None) -> FastAPI:
    """The service; raises :class:`config.ConfigError` if a required setting is missing.

    ``redis_client``: injected (tests: fakeredis); otherwise one pooled client
    from ``REDIS_URL``, closed at shutdown.
    """
    settings.require_service_settings()
    owned = redis_client is None
    client = redis_client if redis_client is not None else connect(settings)
    keys = Keys(settings.key_prefix)
    tenants = settings.tenant_tokens
    # One producer of each kind per tenant: the caller's token picks them (config/tenants.py).
    producers = {name: Producer(settings, tenant=name, redis_client=client) for name in tenants}
    producer = producers.get(DEFAULT_TENANT) or Producer(settings, redis_client=client)
    metrics = Metrics()
    bearer = BearerAuth(tenants)
    idempotency = HttpIdempotency(
        client, keys, ttl_s=settings.intake_idempotency_ttl_s, digest_key=settings.content_key
    )
    intake = Intake(
        producers, bearer, idempotency, metrics, max_body_bytes=settings.intake_max_body_bytes
    )
    # The service holds no Connectus credentials: its preflight reads the balances
    # the workers publish in Redis (worker.balance_snapshot).
    balances = SnapshotBalanceLookup(
        client, keys, max_age_s=3 * settings.balance_snapshot_interval_s
    )
    campaign_producers = {
        name: CampaignProducer(settings, tenant=name, redis_client=client, balance=balances)
        for name in tenants
    }
    campaign_producer = campaign_producers.get(DEFAULT_TENANT) or CampaignProducer(
        settings, redis_client=client, balance=balances
    )
    campaign_controls = {
        name: CampaignControl(p.store, tenant=name) for name, p in campaign_producers.items()
    }
    campaigns = CampaignIntake(
        campaign_producers,
        campaign_controls,
        bearer,
        idempotency,
        max_body_bytes=settings.intake_max_body_bytes,
    )
    if settings.metrics_campaign_labels:
        # Off by default: /metrics is unauthenticated, and these name every campaign.
        metrics.watch_campaigns(campaign_producer.store)
    control = Control(producers, campaign_controls, bearer)
    optouts = OptOuts(client, keys, bearer, default_region=settings.default_region,
                      hash_key=settings.content_key,
                      max_body_bytes=settings.intake_max_body_bytes)  # fmt: skip
    webhooks = Webhooks(
        producer.store,
        EventRecorder(
            client,
            keys,
            seen_ttl_s=settings.job_ttl_s,
            maxlen=settings.events_stream_maxlen,
            hash_key=settings.content_key,
        ),
        {name: WebhookAuth(settings, name) for name in {"default", *settings.account_names}},
        metrics,
        max_body_bytes=settings.webhook_max_body_bytes,
        opt_out_keywords=settings.opt_out_keyword_set,
        default_region=settings.default_region,
        opt_in_keywords=settings.opt_in_keyword_set,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        with anyio.move_on_after(READY_TIMEOUT_S):
            try:
                # abandon_on_cancel: a hung PING must not hold the answer past the timeout.
                await anyio.to_thread.run_sync(client.ping, abandon_on_cancel=True)
            except redis.RedisError as exc:
                return problem_response(503, f"Redis is not answering: {type(exc).__name__}")
            return JSONResponse({"status": "ready"})
        return problem_response(503, f"Redis did not answer PING within {READY_TIMEOUT_S} s")

    async def metrics_endpoint(_: Request) -> Response:
        # In the thread pool: the campaign gauges read Redis at scrape time.
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, headers={"Content-Type": content_type})

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("service started", prefix=settings.key_prefix, webhook_auth=settings.webhook_auth)
        try:
            yield
        finally:
            if owned:
                client.close()

    app = FastAPI(
        title="connectus-worker service",
        version="1",
        description="Message intake, Connectus webhooks, metrics and health. See docs/service.md.",
        docs_url=None,
        redoc_url=None,
        middleware=[
            Middleware(
                RequestContextMiddleware,
                metrics=metrics,
                body_timeout_s=settings.http_body_timeout_s,
            )
        ],
        exception_handlers={
            ProblemError: _problem,
            HTTPException: _http_problem,
            redis.RedisError: _redis_down,
        },
        lifespan=lifespan,
    )
    app.openapi = install_openapi(app, settings)  # type: ignore[method-assign]
    route = app.add_api_route
    replayable = ok("Queued or accepted; a replay carries Idempotent-Replayed: true",
                    ACCEPTED_HEADERS)  # fmt: skip
    route("/v1/messages", intake.post_message, methods=["POST"], status_code=202,
          operation_id="createMessage", summary="Queue one message (SMS, OTP, e-mail, WhatsApp)",
          response_model=Accepted,
          responses={202: replayable, **problems(400, 401, 409, 413, 415, 422, 503)},
          openapi_extra=operation(body="MessageRequest", idempotent=True))  # fmt: skip
    route("/v1/messages/{job_id}", intake.get_message, methods=["GET"],
          operation_id="getMessage", summary="A job's record: state, provider id, delivery status",
          response_model=JobRecord, responses={200: ok("The record"), **problems(401, 404, 503)},
          openapi_extra=operation(path=("job_id", JOB_ID_PATTERN, "From POST /v1/messages "
                                        "(anything else: 404)")))  # fmt: skip
    route("/v1/campaigns", campaigns.post_campaign, methods=["POST"], status_code=202,
          operation_id="createCampaign",
          summary="Accept a campaign: one template, a list of recipients",
          description="Checked like `connectus campaign send` (no balance check: the service "
          "holds no Connectus credentials). Lists larger than INTAKE_MAX_BODY_BYTES go through "
          "the CLI or CampaignProducer.",
          response_model=CampaignAccepted,
          responses={202: replayable, **problems(400, 401, 409, 413, 415, 503),
                     **problems(422, model="CampaignProblem")},
          openapi_extra=operation(body="CampaignRequest", idempotent=True))  # fmt: skip
    route("/v1/campaigns/{campaign_id}", campaigns.get_campaign, methods=["GET"],
          operation_id="getCampaign",
          summary="A campaign's state and progress: recipients by state, rate, ETA",
          response_model=CampaignStatusOut,
          responses={200: ok("The campaign's status"), **problems(401, 404, 503)},
          openapi_extra=operation(path=("campaign_id", CAMPAIGN_ID_PATTERN, "From POST "
                                        "/v1/campaigns (anything else: 404)")))  # fmt: skip
    route("/v1/messages/{job_id}/cancel", control.cancel_message, methods=["POST"],
          operation_id="cancelMessage",
          summary="Cancel a queued, scheduled or retrying message (idempotent)",
          response_model=MessageControlled,
          responses={200: ok("Cancelled (now or by an earlier call)"), **conflict_problems()},
          openapi_extra=operation(path=("job_id", JOB_ID_PATTERN, "From POST /v1/messages "
                                        "(anything else: 404)")))  # fmt: skip
    for action, handler, verb in (
        ("pause", control.pause_campaign, "Pause a campaign: nothing more is released or sent"),
        ("resume", control.resume_campaign, "Resume a paused or late campaign"),
        ("cancel", control.cancel_campaign, "Cancel a campaign: nothing more is sent"),
    ):
        route(f"/v1/campaigns/{{campaign_id}}/{action}", handler, methods=["POST"],
              operation_id=f"{action}Campaign", summary=f"{verb} (idempotent)",
              response_model=CampaignControlled,
              responses={200: ok("Done (now or by an earlier call): the state after it"),
                         **conflict_problems()},
              openapi_extra=operation(path=("campaign_id", CAMPAIGN_ID_PATTERN, "From POST "
                                            "/v1/campaigns (anything else: 404)")))  # fmt: skip
    route("/v1/optouts", optouts.set_state, methods=["POST"], operation_id="setOptOut",
          summary="Opt a number out of marketing, or back in (idempotent; recorded)",
          response_model=OptOutState,
          responses={200: ok("The number's state now"), **problems(400, 401, 413, 415, 422, 503)},
          openapi_extra=operation(body="OptOutChange"))  # fmt: skip
    route("/v1/optouts/lookup", optouts.lookup, methods=["POST"], operation_id="lookupOptOut",
          summary="A number's opt-out state and every recorded change (time, source)",
          response_model=OptOutHistory,
          responses={200: ok("State and history"), **problems(400, 401, 413, 415, 422, 503)},
          openapi_extra=operation(body="OptOutLookup"))  # fmt: skip
    route("/v1/optouts", optouts.list_page, methods=["GET"], operation_id="listOptOuts",
          summary="A page of the numbers opted out of marketing", response_model=OptOutPage,
          responses={200: ok("A page; next_cursor 0 = the last"), **problems(401, 422, 503)},
          openapi_extra={**operation(), "parameters": [
              {"name": "cursor", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 0}},
              {"name": "count", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
              *operation()["parameters"]]})  # fmt: skip
    account = ("account", ACCOUNT_PATTERN, "The Connectus account (CONNECTUS_ACCOUNTS)")
    for prefix, suffix in (("/webhooks", ""), ("/webhooks/{account}", "OfAccount")):
        for path, handler, name, summary in (
            ("/sms-status", webhooks.sms_status, "smsStatus", "SMS status"),
            ("/sms-incoming", webhooks.sms_incoming, "smsIncoming", "incoming SMS"),
        ):
            # An account's route is opened by that account's credentials only.
            extra = operation(body=name[0].upper() + name[1:] + "Webhook", security="webhook",
                              path=account if suffix else None)  # fmt: skip
            route(prefix + path, handler, methods=["POST"], operation_id=f"{name}Webhook{suffix}",
                  summary=f"Connectus {summary} callback" + (" of one account" if suffix else ""),
                  response_model=WebhookAck,
                  responses={200: ok("Recorded, or a harmless duplicate"),
                             **problems(400, 401, 404, 413, 422, 503)},
                  openapi_extra=extra)  # fmt: skip
    route("/healthz", healthz, methods=["GET"], operation_id="healthz",
          summary="Liveness: the process answers", response_model=Status,
          responses={200: ok("Alive")}, openapi_extra=operation(security=None))  # fmt: skip
    route("/readyz", readyz, methods=["GET"], operation_id="readyz",
          summary="Readiness: Redis answers PING within 1 s", response_model=Status,
          responses={200: ok("Ready"), **problems(503)},
          openapi_extra=operation(security=None))  # fmt: skip
    route("/metrics", metrics_endpoint, methods=["GET"], operation_id="metrics",
          summary="Prometheus metrics", response_class=PlainTextResponse,
          responses={200: ok("Exposition format")},
          openapi_extra=operation(security=None))  # fmt: skip
    console = build_console(settings, client)
    if console is not None:
        app.mount("/ui", console)
    app.state.metrics = metrics
    app.state.producer = producer
    app.state.campaign_producer = campaign_producer
    app.state.redis = client
    return app


async def _problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return response_for(exc)


async def _http_problem(_: Request, exc: Exception) -> Response:
    # Starlette's own 404 (no route) and 405 (wrong method), as problem+json.
    assert isinstance(exc, HTTPException)
    headers: dict[str, Any] = dict(exc.headers or {})
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


async def _redis_down(_: Request, exc: Exception) -> Response:
    log.error("redis error", error=f"{type(exc).__name__}: {exc}")
    return problem_response(
        503, "storage is unavailable; retry later", headers={"Retry-After": "1"}
    )
