"""The service over real HTTP: uvicorn on a loopback port, a real Redis.

The last test runs the whole loop with real processes: our intake queues a
message, a worker sends it to the Connectus sandbox, the sandbox posts its
status webhooks back to our service, and the job record shows ENTREGADO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from connectus_worker.config import Settings, load_settings
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.service.events import events_key
from devtools.service_server import ServiceServer
from devtools.stack import LocalStack
from tests.support.waiting import scaled

TOKEN = "it-token-0123456789abcdef"
SECRET = "it-hook-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SMS = {"type": "sms", "dst_number": "56987688060", "sms_content": "hola"}
#: How long a test waits for an event (s; stretched by the box's load).
WAIT_S = 60
#: One XREAD's block (ms): below the client's socket timeout (redis-py's default is
#: 5 s, and a longer block then ends in a TimeoutError, not in an empty answer).
BLOCK_MS = 1_000


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    # redis_client: its fixture deletes every key under the prefix afterwards.
    # METRICS_CAMPAIGN_LABELS: the campaign test reads the per-campaign gauges (off by
    # default; tests/integration/test_tenants_http.py checks that).
    return load_settings(
        {"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix, "INTAKE_TOKENS": TOKEN,
         "WEBHOOK_SECRET": SECRET, "METRICS_CAMPAIGN_LABELS": "true"}
    )  # fmt: skip


@pytest.fixture
def server(settings: Settings) -> Iterator[ServiceServer]:
    with ServiceServer(settings) as running:
        yield running


@pytest.fixture
def http(server: ServiceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def next_event(
    client: redis.Redis, stream: str, last_id: str, match: Callable[[dict[str, str]], bool]
) -> tuple[str, dict[str, str]]:
    """Block on the stream (XREAD BLOCK) until an entry matches; no polling sleeps."""
    limit_s = scaled(WAIT_S)
    deadline = monotonic() + limit_s
    while monotonic() < deadline:
        answer = client.xread({stream: last_id}, block=BLOCK_MS, count=100)
        for entry_id, fields in answer[0][1] if answer else []:
            last_id = entry_id
            if match(fields):
                return last_id, fields
    raise AssertionError(f"no matching event on {stream} within {limit_s:.0f} s")


def test_post_get_and_a_webhook_update_over_http(
    http: httpx.Client, settings: Settings, redis_url: str, redis_client: redis.Redis
) -> None:
    posted = http.post("/v1/messages", json=SMS, headers={**BEARER, "X-Request-ID": "it-1"})
    assert posted.status_code == 202, posted.text
    assert posted.headers["x-request-id"] == "it-1"
    job_id = posted.json()["job_id"]
    record = http.get(f"/v1/messages/{job_id}", headers=BEARER).json()
    assert record["state"] == "queued" and record["correlation_id"] == "it-1"

    # What the worker records once Connectus accepted the message.
    store = JobStore(redis.Redis.from_url(redis_url), Keys(settings.key_prefix), ttl_s=60)
    claim = store.claim(job_id, worker_id="it", lease_ms=60_000)
    assert store.finish(
        Finish(job_id, claim.fence, "done", {"state": "sent", "provider_id": "it-sms-1"})
    )

    hook = http.post("/webhooks/sms-status", params={"token": SECRET},
                     json={"id_sms": "it-sms-1", "status": "ENTREGADO"})  # fmt: skip
    refused = http.post("/webhooks/sms-status", params={"token": "x" * 20},
                        json={"id_sms": "it-sms-1", "status": "NO_ENTREGABLE"})  # fmt: skip
    assert hook.status_code == 200 and hook.json() == {"result": "recorded"}
    assert refused.status_code == 401
    record = http.get(f"/v1/messages/{job_id}", headers=BEARER).json()
    assert record["state"] == "sent" and record["delivery_status"] == "ENTREGADO"
    (entry,) = redis_client.xrange(events_key(Keys(settings.key_prefix)))
    assert entry[1]["job_id"] == job_id and entry[1]["correlation_id"] == "it-1"


def test_stop_then_a_marketing_send_is_refused_over_http(http: httpx.Client) -> None:
    incoming = {"id_sms": "in-1", "dst_number": "4374", "src_number": "56987688060",
                "src_provider": "entel", "sms_content": "STOP", "sms_content_binary": "53544f50"}  # fmt: skip
    assert http.post("/webhooks/sms-incoming", params={"token": SECRET}, json=incoming).is_success
    bulk = http.post("/v1/messages", json={**SMS, "priority": "bulk"}, headers=BEARER)
    otp = http.post("/v1/messages", json={**SMS, "type": "otp"}, headers=BEARER)
    assert bulk.status_code == 422
    assert bulk.json()["invalid-params"] == [
        {"name": "dst_number", "reason": "opted out of marketing messages"}
    ]
    assert otp.status_code == 202


def test_health_metrics_and_the_body_limit_over_a_real_socket(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200

    def chunks() -> Iterator[bytes]:
        for _ in range(4_096):  # 4 MiB without Content-Length, limit 256 KiB
            yield b" " * 1024

    try:
        big = http.post("/v1/messages", content=chunks(),
                        headers={**BEARER, "Content-Type": "application/json"})  # fmt: skip
        assert big.status_code == 413
    except httpx.WriteError:
        pass  # the server answered 413 and closed while we were still writing: also a refusal
    assert 'route="/v1/messages",status="413"' in http.get("/metrics").text


def test_intake_to_sandbox_and_status_webhooks_back(
    make_stack: Callable[..., LocalStack],
    settings: Settings,
    server: ServiceServer,
    http: httpx.Client,
    redis_client: redis.Redis,
) -> None:
    hook_url = f"{server.base_url}/webhooks/sms-status?token={SECRET}"
    make_stack(sandbox_flags={"status_hook_url": hook_url})
    posted = http.post("/v1/messages", json=SMS, headers=BEARER)
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["job_id"]

    def delivered(fields: dict[str, Any]) -> bool:
        return fields["job_id"] == job_id and fields["status"] == "ENTREGADO"

    next_event(redis_client, events_key(Keys(settings.key_prefix)), "0", delivered)
    record = http.get(f"/v1/messages/{job_id}", headers=BEARER).json()
    assert record["state"] == "sent" and record["delivery_status"] == "ENTREGADO"
    assert record["provider_id"]


def test_a_campaign_over_http_is_stored_in_redis_and_reads_back(
    http: httpx.Client, settings: Settings, redis_client: redis.Redis
) -> None:
    # Tomorrow at 09:00 local time: scheduled, so nothing releases it meanwhile.
    zone = ZoneInfo(settings.default_timezone)
    at = datetime.combine(datetime.now(zone).date() + timedelta(days=1), time(9), tzinfo=zone)
    campaign = {
        "name": "Promo IT", "kind": "sms", "text": "Hola {name}", "transport": "v3",
        "deliver_at": at.strftime("%Y-%m-%d %H:%M:%S"), "window": "09:00-21:00",
        "recipients": [{"dst_number": "56987688060", "name": "Ana"},
                       {"dst_number": "+56 9 8768 8061", "name": "Luis"},
                       {"dst_number": "12", "name": "Eva"}],
    }  # fmt: skip
    headers = {**BEARER, "Idempotency-Key": "it-campaign-1"}
    refused = http.post("/v1/campaigns", json=campaign, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["invalid_rows"] == [{"line": 3, "field": "dst_number",
                                               "reason": "is too short"}]  # fmt: skip
    campaign["skip_invalid"] = True
    posted = http.post("/v1/campaigns", json=campaign, headers=headers)
    replayed = http.post("/v1/campaigns", json=campaign, headers=headers)
    assert posted.status_code == 202, posted.text
    campaign_id = posted.json()["campaign_id"]
    assert posted.json()["plan"]["deliver_at"] == at.isoformat()
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["campaign_id"] == campaign_id

    status = http.get(posted.headers["location"], headers=BEARER)
    assert status.status_code == 200
    body = status.json()
    assert (body["campaign_id"], body["state"], body["total"]) == (campaign_id, "scheduled", 2)
    assert body["counts"] == {"pending": 2} and body["window"] == "09:00-21:00"
    # In the real Redis: the record, its one chunk of rows, and the indexes.
    keys = Keys(settings.key_prefix)
    assert redis_client.hget(keys.campaign(campaign_id), "state") == "scheduled"
    assert redis_client.exists(keys.campaign_chunk(campaign_id, 0))
    assert redis_client.sismember(keys.active_campaigns, campaign_id)
    assert http.get("/v1/campaigns/0123456789abcdef", headers=BEARER).status_code == 404

    metrics = http.get("/metrics").text
    assert f'connectus_campaign_recipients{{campaign="{campaign_id}",state="pending"}} 2.0' in (
        metrics
    )
    assert f'connectus_campaign_state{{campaign="{campaign_id}",state="scheduled"}} 1.0' in metrics
