"""Control over HTTP on a real socket and a real Redis: cancel a message; pause, resume
and cancel a campaign. Each is idempotent: asking again answers the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from connectus_worker.config import Settings, load_settings
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.keys import Keys
from devtools.service_server import ServiceServer

TOKEN = "it-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
LATER = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
SMS = {"type": "sms", "dst_number": "56987688060", "sms_content": "hola"}
CAMPAIGN = {"name": "Promo", "kind": "sms", "text": "Hola {name}", "deliver_at": LATER,
            "recipients": [{"dst_number": "56987688061", "name": "Ana"}]}  # fmt: skip
PROBLEM = "application/problem+json"


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    return load_settings({"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix,
                          "INTAKE_TOKENS": TOKEN, "WEBHOOK_SECRET": "it-hook-0123456789abcdef"})  # fmt: skip


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with ServiceServer(settings) as server, httpx.Client(base_url=server.base_url,
                                                         timeout=10) as client:  # fmt: skip
        yield client


def test_cancel_a_queued_message_twice_then_it_is_never_sendable(
    http: httpx.Client, settings: Settings, redis_url: str
) -> None:
    job_id = http.post("/v1/messages", json=SMS, headers=BEARER).json()["job_id"]
    first = http.post(f"/v1/messages/{job_id}/cancel", headers=BEARER)
    again = http.post(f"/v1/messages/{job_id}/cancel", headers=BEARER)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"job_id": job_id, "state": "cancelled"}
    assert http.get(f"/v1/messages/{job_id}", headers=BEARER).json()["state"] == "cancelled"
    # A worker that meets it can't take it.
    store = JobStore(redis.Redis.from_url(redis_url), Keys(settings.key_prefix), ttl_s=60)
    assert store.claim(job_id, worker_id="it", lease_ms=60_000).status == "done"


def test_a_sent_message_is_409_naming_its_state_and_unknown_is_404(
    http: httpx.Client, settings: Settings, redis_url: str
) -> None:
    job_id = http.post("/v1/messages", json=SMS, headers=BEARER).json()["job_id"]
    store = JobStore(redis.Redis.from_url(redis_url), Keys(settings.key_prefix), ttl_s=60)
    claim = store.claim(job_id, worker_id="it", lease_ms=60_000)
    assert store.finish(
        Finish(job_id, claim.fence, "done", {"state": "sent", "provider_id": "it-1"})
    )
    sent = http.post(f"/v1/messages/{job_id}/cancel", headers=BEARER)
    assert sent.status_code == 409 and sent.headers["content-type"] == PROBLEM
    assert "is sent" in sent.json()["detail"]
    for unknown in ("0" * 32, "no such!"):
        answer = http.post(f"/v1/messages/{unknown}/cancel", headers=BEARER)
        assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
    assert http.post(f"/v1/messages/{job_id}/cancel").status_code == 401


def test_pause_resume_cancel_a_campaign_each_twice(http: httpx.Client) -> None:
    created = http.post("/v1/campaigns", json=CAMPAIGN, headers=BEARER)
    assert created.status_code == 202, created.text
    campaign_id = created.json()["campaign_id"]

    def act(action: str) -> httpx.Response:
        return http.post(f"/v1/campaigns/{campaign_id}/{action}", headers=BEARER)

    def state() -> str:
        return str(http.get(f"/v1/campaigns/{campaign_id}", headers=BEARER).json()["state"])

    assert state() == "scheduled"
    for action, expected in (("pause", "paused"), ("resume", "scheduled"),
                             ("cancel", "cancelled")):  # fmt: skip
        first, again = act(action), act(action)
        assert first.status_code == again.status_code == 200, first.text
        body = {"campaign_id": campaign_id, "action": action, "state": expected}
        assert first.json() == again.json() == body
        assert state() == expected
    for action in ("pause", "resume"):
        refused = act(action)
        assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
        assert "is cancelled" in refused.json()["detail"]
    assert state() == "cancelled"
    assert http.post("/v1/campaigns/" + "f" * 16 + "/pause", headers=BEARER).status_code == 404
    assert http.post(f"/v1/campaigns/{campaign_id}/cancel").status_code == 401


def test_the_control_routes_are_in_the_openapi_document(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert paths["/v1/messages/{job_id}/cancel"]["post"]["operationId"] == "cancelMessage"
    for action in ("pause", "resume", "cancel"):
        operation = paths[f"/v1/campaigns/{{campaign_id}}/{action}"]["post"]
        assert operation["operationId"] == f"{action}Campaign"
        assert {"200", "401", "404", "409"} <= set(operation["responses"])
        assert operation["security"] == [{"bearer": []}]
