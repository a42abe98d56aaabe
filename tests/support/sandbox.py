"""Shared helpers of the sandbox unit tests: a hand-moved clock and an in-process client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from sandbox.app import build_app
from sandbox.config import SandboxConfig
from sandbox.web import Runtime
from tests.support.clock import Clock

AUTH = ("sandbox", "sandbox-key")
# 2025-01-15 12:00:00 UTC = 09:00:00 in Santiago (UTC-3 in summer).
T0 = 1736942400.0


class Sandbox:
    """An app, its runtime and its clock, plus a client that speaks to it in-process."""

    def __init__(self, client: httpx.AsyncClient, runtime: Runtime, clock: Clock) -> None:
        self.client = client
        self.rt = runtime
        self.state = runtime.state
        self.clock = clock
        self.notified: list[tuple[str, dict[str, Any]]] = []
        # Capture webhooks instead of queueing them: no background senders in-process.
        self.state.notify = lambda url, payload: self.notified.append((url, payload))

    def advance(self, seconds: float) -> int:
        """Move time and run the scheduler once, as the app's loop would."""
        self.clock.advance(seconds=seconds)
        return self.state.tick(self.clock.seconds())

    async def post(
        self, path: str, body: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.client.post(path, json=body, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, **kw)


@asynccontextmanager
async def sandbox(**overrides: Any) -> AsyncIterator[Sandbox]:
    clock = Clock(now_ms=T0 * 1000)
    config = SandboxConfig(**overrides)
    app = build_app(config, clock=clock.seconds)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox", auth=AUTH) as c:
        yield Sandbox(c, app.state.runtime, clock)


async def send_sms(sb: Sandbox, content: str = "hola", **extra: Any) -> dict[str, Any]:
    body = {"dst_number": "56987688060", "sms_content": content, **extra}
    response = await sb.post("/api_v3/sms/send_individual", body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer
