"""``build_app(config)``: the one ASGI app serving v3, v1, the QR API and the admin API.

Routes: ``/api_v3/...``, ``/api_v1/...``, the QR API at the root, ``/_sandbox/...``.
The lifespan starts one scheduler loop (status progression, every
``tick_interval_s`` seconds) and the webhook sender pool; without a lifespan
(``httpx.ASGITransport``) nothing runs in the background and tests call
``state.tick(now)`` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox import admin, api_qr, api_v1, api_v3_account, api_v3_messaging, api_v3_sms
from sandbox.config import SandboxConfig
from sandbox.state import Clock, SandboxState
from sandbox.web import Runtime

log = logging.getLogger("sandbox")


async def _scheduler(rt: Runtime) -> None:
    state = rt.state
    interval_s = rt.config.tick_interval_s
    while True:
        try:
            state.tick(state.clock())
        except Exception:  # a bug in one step must not stop every later status change
            log.exception("scheduler tick failed")
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running(rt: Runtime) -> AsyncIterator[None]:
    """One account's background work: the webhook senders and the scheduler loop."""
    await rt.webhooks.start()
    task = asyncio.create_task(_scheduler(rt), name="sandbox-scheduler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rt.webhooks.stop()


def build_app(config: SandboxConfig, *, clock: Clock = time.time) -> Starlette:
    """The sandbox app; ``app.state.runtime`` holds the state, faults, stats, webhooks.

    With ``config.accounts`` it serves several accounts (:mod:`sandbox.accounts`).
    """
    if config.accounts:
        from sandbox.accounts import build_accounts_app

        return build_accounts_app(config, clock=clock)
    rt = Runtime(config, SandboxState(config, clock))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(rt):
            yield

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        rt.stats.count("<unmatched>", str(exc.status_code))
        message = "Not found" if exc.status_code == 404 else exc.detail
        return JSONResponse({"error": message}, status_code=exc.status_code)

    routes = [
        *api_v3_sms.routes(rt),
        *api_v3_messaging.routes(rt),
        *api_v3_account.routes(rt),
        *api_v1.routes(rt),
        *api_qr.routes(rt),
        *admin.routes(rt),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.runtime = rt
    return app
