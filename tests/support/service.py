"""In-process service for unit tests: fakeredis + httpx.ASGITransport, no network."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import fakeredis
import httpx
import structlog
from starlette.applications import Starlette

from connectus_worker.campaign.store import CampaignStore
from connectus_worker.config import Settings, load_settings
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.logging import configure_logging
from connectus_worker.service import build_app

TOKEN = "tok-A-0123456789abcdef"
OTHER_TOKEN = "tok-B-0123456789abcdef"
SECRET = "hook-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NUMBER = "+56 9 8765 4321"
E164 = "56987654321"
SMS = {"type": "sms", "dst_number": NUMBER, "sms_content": "hola"}


def make_settings(**env: str) -> Settings:
    values = {
        "INTAKE_TOKENS": f"{TOKEN},{OTHER_TOKEN}",
        "WEBHOOK_SECRET": SECRET,
        "CONNECTUS_DEFAULT_SRC_EMAIL": "contacto@empresa.cl",
        **env,
    }
    return load_settings(values)


@dataclass
class Service:
    client: httpx.AsyncClient
    app: Starlette
    redis: fakeredis.FakeRedis
    settings: Settings

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    @property
    def store(self) -> JobStore:
        return JobStore(self.redis, self.keys, ttl_s=self.settings.job_ttl_s)

    async def send(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post("/v1/messages", json=body, headers={**BEARER, **headers})

    async def status_hook(self, body: dict[str, Any], token: str = SECRET) -> httpx.Response:
        return await self.client.post("/webhooks/sms-status", params={"token": token}, json=body)

    async def incoming_hook(self, body: dict[str, Any], token: str = SECRET) -> httpx.Response:
        return await self.client.post("/webhooks/sms-incoming", params={"token": token}, json=body)

    def events(self) -> list[dict[str, str]]:
        entries = self.redis.xrange(f"{self.settings.key_prefix}:events")
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

    def mark_sent(self, job_id: str, provider_id: str) -> None:
        """What the worker does after Connectus accepted the send: provider id indexed."""
        claim = self.store.claim(job_id, worker_id="w1", lease_ms=60_000)
        assert claim.status == "ok", claim
        fields = {"state": "sent", "provider_id": provider_id}
        assert self.store.finish(Finish(job_id, claim.fence, "done", fields))


@asynccontextmanager
async def service(redis: fakeredis.FakeRedis | None = None, **env: str) -> AsyncIterator[Service]:
    settings = make_settings(**env)
    client = redis if redis is not None else fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = build_app(settings, redis_client=client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield Service(http, app, client, settings)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert an RFC 7807 answer with ``status``; returns the document."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


def invalid_params(response: httpx.Response) -> dict[str, str]:
    body = problem(response, 422)
    return {param["name"]: param["reason"] for param in body["invalid-params"]}


@contextmanager
def json_logs() -> Iterator[None]:
    """Our JSON logging for the duration; restores the previous configuration."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(level="INFO", json=True)
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def log_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


#: A small SMS campaign of three recipients, as the intake takes it.
RECIPIENTS: list[dict[str, Any]] = [
    {"dst_number": "+56 9 8765 4321", "name": "Ana"},
    {"dst_number": 56987654322, "name": "Luis"},
    {"dst_number": "56987654323", "name": "Eva", "unused": None},
]
CAMPAIGN: dict[str, Any] = {
    "name": "Promo",
    "kind": "sms",
    "text": "Hola {name}",
    "recipients": RECIPIENTS,
}


def store_of(svc: Service) -> CampaignStore:
    store: CampaignStore = svc.app.state.campaign_producer.store
    return store
