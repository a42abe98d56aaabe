"""``build_app(settings)``: the ASGI service (FastAPI): messages, campaigns, opt-outs,
Connectus webhooks, ``/metrics``, ``/healthz``, ``/readyz``, ``/openapi.json`` and the
operator console at ``/ui`` (when ``CONSOLE_USERS`` is set). Every error is problem+json
(:mod:`service.problems`), FastAPI's own ones too.
"""

import contextlib
import functools
from collections.abc import AsyncIterator

import anyio
import redis
import structlog
from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from connectus_worker.config import Settings
from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.validation import FieldError, InvalidInput
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaign_control import CampaignControl
from connectus_worker.producers.campaigns import CampaignProducer
from connectus_worker.redis import connect
from connectus_worker.service.auth import BearerAuth, WebhookAuth
from connectus_worker.service.campaigns import campaign_routes
from connectus_worker.service.console import build_console
from connectus_worker.service.events import EventRecorder
from connectus_worker.service.idempotency import HttpIdempotency
from connectus_worker.service.intake import message_routes
from connectus_worker.service.metrics import Metrics
from connectus_worker.service.middleware import RequestContextMiddleware
from connectus_worker.service.openapi import install_openapi, ok, problems, request_id
from connectus_worker.service.optouts import optout_routes
from connectus_worker.service.problems import ProblemError, problem_response
from connectus_worker.service.webhooks import webhook_routes
from connectus_worker.worker.balance_snapshot import SnapshotBalanceLookup

log = structlog.get_logger("connectus_worker.service.app")

#: /readyz answers 503 if Redis has not answered PING within this many seconds.
READY_TIMEOUT_S = 1.0


class Status(BaseModel):
    status: str


def build_app(settings: Settings, *, redis_client: redis.Redis | None = None) -> FastAPI:
    """The service; :class:`config.ConfigError` if a required setting is missing.
    ``redis_client``: injected (tests), else one pooled client, closed at shutdown."""
    settings.require_service_settings()
    owned = redis_client is None
    client = redis_client if redis_client is not None else connect(settings)
    keys = Keys(settings.key_prefix)
    tenants = settings.tenant_tokens
    # One producer of each kind per tenant: the caller's token picks them (config/tenants.py).
    producers = {name: Producer(settings, tenant=name, redis_client=client) for name in tenants}
    metrics = Metrics()
    bearer = BearerAuth(tenants)
    idempotency = HttpIdempotency(
        client, keys, ttl_s=settings.intake_idempotency_ttl_s, digest_key=settings.content_key
    )
    max_body = settings.intake_max_body_bytes
    # The service holds no Connectus credentials: its preflight reads the balances
    # the workers publish in Redis (worker.balance_snapshot).
    balances = functools.partial(
        SnapshotBalanceLookup, client, keys, max_age_s=3 * settings.balance_snapshot_interval_s
    )
    campaign_producers = {
        name: CampaignProducer(settings, tenant=name, redis_client=client, balance=balances)
        for name in tenants
    }
    # The job and campaign stores are shared by the tenants: the default's (or any) will do.
    producer = producers.get(DEFAULT_TENANT) or next(iter(producers.values()))
    campaign_producer = campaign_producers[producer.tenant]
    campaign_controls = {
        name: CampaignControl(p.store, tenant=name) for name, p in campaign_producers.items()
    }
    if settings.metrics_campaign_labels:
        # Off by default: /metrics is unauthenticated, and these name every campaign.
        metrics.watch_campaigns(campaign_producer.store)
    recorder = EventRecorder(
        client,
        keys,
        seen_ttl_s=settings.job_ttl_s,
        maxlen=settings.events_stream_maxlen,
        hash_key=settings.content_key,
    )
    webhook_auths = {name: WebhookAuth(settings, name)
                     for name in {"default", *settings.account_names}}  # fmt: skip

    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz() -> Response:
        with anyio.move_on_after(READY_TIMEOUT_S):
            try:
                # abandon_on_cancel: a hung PING must not hold the answer past the timeout.
                await anyio.to_thread.run_sync(client.ping, abandon_on_cancel=True)
            except redis.RedisError as exc:
                return problem_response(503, f"Redis is not answering: {type(exc).__name__}")
            return JSONResponse({"status": "ready"})
        return problem_response(503, f"Redis did not answer PING within {READY_TIMEOUT_S} s")

    async def metrics_endpoint() -> Response:
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
            RequestValidationError: _invalid,
            redis.RedisError: _redis_down,
        },
        dependencies=[Depends(request_id)],
        lifespan=lifespan,
    )
    app.openapi = install_openapi(app)  # type: ignore[method-assign]
    message_routes(app, producers, bearer, idempotency, metrics, max_body_bytes=max_body)
    campaign_routes(
        app, campaign_producers, campaign_controls, bearer, idempotency, max_body_bytes=max_body
    )
    optout_routes(
        app,
        client,
        keys,
        bearer,
        default_region=settings.default_region,
        hash_key=settings.content_key,
        max_body_bytes=max_body,
    )
    webhook_routes(app, producer.store, recorder, webhook_auths, metrics,
                   auth_mode=settings.webhook_auth, max_body_bytes=settings.webhook_max_body_bytes,
                   opt_out_keywords=settings.opt_out_keyword_set,
                   opt_in_keywords=settings.opt_in_keyword_set,
                   default_region=settings.default_region)  # fmt: skip
    app.add_api_route("/healthz", healthz, operation_id="healthz", response_model=Status,
                      summary="Liveness: the process answers", responses={200: ok("Alive")},
                      methods=["GET"])  # fmt: skip
    app.add_api_route("/readyz", readyz, operation_id="readyz", response_model=Status,
                      summary="Readiness: Redis answers PING within 1 s",
                      responses={200: ok("Ready"), **problems(503)}, methods=["GET"])  # fmt: skip
    app.add_api_route("/metrics", metrics_endpoint, operation_id="metrics",
                      summary="Prometheus metrics", response_class=PlainTextResponse,
                      responses={200: ok("Exposition format")}, methods=["GET"])  # fmt: skip
    console = build_console(settings, client)
    if console is not None:
        app.mount("/ui", console)
    app.state.producer = producer
    app.state.campaign_producer = campaign_producer
    return app


async def _problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return exc.response()


async def _http_problem(_: Request, exc: Exception) -> Response:
    # Starlette's own 404 (no route) and 405 (wrong method), as problem+json.
    assert isinstance(exc, HTTPException)
    return problem_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


async def _invalid(_: Request, exc: Exception) -> Response:
    # A query parameter FastAPI validated (the bodies are read and validated by hand).
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(str(e["loc"][-1]), e["msg"]) for e in exc.errors()]
    return ProblemError.from_invalid(InvalidInput.from_errors(errors)).response()


async def _redis_down(_: Request, exc: Exception) -> Response:
    log.error("redis error", error=f"{type(exc).__name__}: {exc}")
    return problem_response(
        503, "storage is unavailable; retry later", headers={"Retry-After": "1"}
    )
