"""``build_app(settings)``: the ASGI service (Starlette).

Routes: intake (``/v1/messages``, ``/v1/campaigns``), Connectus webhooks
(``/webhooks/...``), ``/metrics``, ``/healthz``, ``/readyz`` and
``/openapi.json``. Settings are read once by the caller and passed in; so is
the Redis client in tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import redis
import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import Settings
from core.keys import Keys
from core.redis import connect
from producers.api import Producer
from producers.campaign_control import CampaignControl
from producers.campaigns import CampaignProducer
from service.auth import BearerAuth, WebhookAuth
from service.campaigns import CampaignIntake
from service.events import EventRecorder
from service.idempotency import HttpIdempotency
from service.intake import Intake
from service.metrics import Metrics
from service.middleware import RequestContextMiddleware
from service.openapi import build_openapi
from service.problems import ProblemError, problem_response, response_for
from service.webhooks import Webhooks

log = structlog.get_logger("service.app")

#: /readyz answers 503 if Redis has not answered PING within this many seconds.
READY_TIMEOUT_S = 1.0


def build_app(settings: Settings, *, redis_client: redis.Redis | None = None) -> Starlette:
    """The service; raises :class:`config.ConfigError` if a required setting is missing.

    ``redis_client``: injected (tests: fakeredis); otherwise one pooled client
    from ``REDIS_URL``, closed at shutdown.
    """
    settings.require_service_settings()
    owned = redis_client is None
    client = redis_client if redis_client is not None else connect(settings)
    keys = Keys(settings.key_prefix)
    producer = Producer(settings, redis_client=client)
    metrics = Metrics()
    bearer = BearerAuth(settings.intake_token_values)
    idempotency = HttpIdempotency(client, keys, ttl_s=settings.intake_idempotency_ttl_s)
    intake = Intake(
        producer, bearer, idempotency, metrics, max_body_bytes=settings.intake_max_body_bytes
    )
    # balance=None: the service holds no Connectus credentials (see service.campaigns).
    campaign_producer = CampaignProducer(settings, redis_client=client, balance=None)
    campaigns = CampaignIntake(
        campaign_producer,
        CampaignControl(campaign_producer.store),
        bearer,
        idempotency,
        max_body_bytes=settings.intake_max_body_bytes,
    )
    metrics.watch_campaigns(campaign_producer.store)
    webhooks = Webhooks(
        producer.store,
        EventRecorder(
            client, keys, seen_ttl_s=settings.job_ttl_s, maxlen=settings.events_stream_maxlen
        ),
        WebhookAuth(settings),
        metrics,
        max_body_bytes=settings.webhook_max_body_bytes,
        opt_out_keywords=settings.opt_out_keyword_set,
        default_region=settings.default_region,
    )
    document = build_openapi(settings)

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

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info("service started", prefix=settings.key_prefix, webhook_auth=settings.webhook_auth)
        try:
            yield
        finally:
            if owned:
                client.close()

    app = Starlette(
        routes=[
            Route("/v1/messages", intake.post_message, methods=["POST"]),
            Route("/v1/messages/{job_id}", intake.get_message, methods=["GET"]),
            Route("/v1/campaigns", campaigns.post_campaign, methods=["POST"]),
            Route("/v1/campaigns/{campaign_id}", campaigns.get_campaign, methods=["GET"]),
            Route("/webhooks/sms-status", webhooks.sms_status, methods=["POST"]),
            Route("/webhooks/sms-incoming", webhooks.sms_incoming, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        middleware=[Middleware(RequestContextMiddleware, metrics=metrics)],
        exception_handlers={
            ProblemError: _problem,
            HTTPException: _http_problem,
            redis.RedisError: _redis_down,
        },
        lifespan=lifespan,
    )
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
