"""Tenants and key namespaces over real HTTP (uvicorn on loopback) and a real Redis.

Issue 21, High 1: a message keyed ``campaign:K`` and campaign ``K``, a key
``job:<id>`` and an automatic key, ``Idempotency-Key: X:lock`` and the
in-flight marker of ``X`` are different keys. Medium 3: two tenants with one
key get two jobs; another tenant's job or campaign is a 404, and it can't be
cancelled; unauthenticated ``/metrics`` names no campaign by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import Settings, load_settings
from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaigns import CampaignProducer
from devtools.service_server import ServiceServer

ACME = "it-acme-0123456789abcdef"
GLOBEX = "it-globex-0123456789abcdef"
PLAIN = "it-plain-0123456789abcdef"  # INTAKE_TOKENS: the default tenant
SECRET = "it-hook-0123456789abcdef"
SMS = {"type": "sms", "dst_number": "56987688060", "sms_content": "hola"}
ROWS: list[dict[str, Any]] = [{"dst_number": "56987688061", "name": "Ana"}]
CAMPAIGN = {"name": "Promo noviembre", "kind": "sms", "text": "Hola {name}", "recipients": ROWS}


def auth(token: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    # redis_client: its fixture deletes every key under the prefix afterwards.
    return load_settings(
        {"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix, "INTAKE_TOKENS": PLAIN,
         "INTAKE_TENANTS": f"acme:{ACME};globex:{GLOBEX}", "WEBHOOK_SECRET": SECRET}
    )  # fmt: skip


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with (
        ServiceServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        yield client


# --- tenants (Medium 3) ------------------------------------------------------------------


def test_two_tenants_with_the_same_key_get_two_jobs(http: httpx.Client) -> None:
    acme = http.post("/v1/messages", json=SMS, headers=auth(ACME, "order-1"))
    globex = http.post("/v1/messages", json=SMS, headers=auth(GLOBEX, "order-1"))
    replay = http.post("/v1/messages", json=SMS, headers=auth(ACME, "order-1"))
    assert acme.status_code == globex.status_code == replay.status_code == 202
    assert acme.json()["job_id"] != globex.json()["job_id"]
    assert "idempotent-replayed" not in globex.headers
    assert replay.json()["job_id"] == acme.json()["job_id"]
    for token, tenant, answer in ((ACME, "acme", acme), (GLOBEX, "globex", globex)):
        record = http.get(f"/v1/messages/{answer.json()['job_id']}", headers=auth(token))
        assert record.status_code == 200 and record.json()["tenant"] == tenant


def test_another_tenants_job_is_a_404_and_cannot_be_cancelled(
    http: httpx.Client, settings: Settings
) -> None:
    posted = http.post("/v1/messages", json=SMS, headers=auth(ACME))
    job_id = posted.json()["job_id"]
    for token in (GLOBEX, PLAIN):
        other = http.get(f"/v1/messages/{job_id}", headers=auth(token))
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"
    # The intake offers no cancel; the Python producers and the CLI do.
    assert Producer(settings, tenant="globex").cancel(job_id) == "missing"
    assert Producer(settings).cancel(job_id) == "missing"  # the default tenant
    still = http.get(f"/v1/messages/{job_id}", headers=auth(ACME))
    assert still.json()["state"] == "queued"
    assert Producer(settings, tenant="acme").cancel(job_id) == "cancelled"


def test_a_conflict_names_no_job(
    http: httpx.Client, settings: Settings, redis_client: redis.Redis
) -> None:
    first = http.post("/v1/messages", json=SMS, headers=auth(ACME, "order-2"))
    # Past the stored HTTP answer (INTAKE_IDEMPOTENCY_TTL_S): the job-level conflict.
    redis_client.delete(*redis_client.keys(f"{settings.key_prefix}:http-idem:*"))
    other = http.post(
        "/v1/messages", json={**SMS, "sms_content": "otro"}, headers=auth(ACME, "order-2")
    )
    assert other.status_code == 422
    assert first.json()["job_id"] not in other.text


def test_another_tenants_campaign_is_a_404(http: httpx.Client) -> None:
    posted = http.post("/v1/campaigns", json=CAMPAIGN, headers=auth(ACME, "promo-1"))
    same_key = http.post("/v1/campaigns", json=CAMPAIGN, headers=auth(GLOBEX, "promo-1"))
    campaign_id = posted.json()["campaign_id"]
    assert posted.status_code == same_key.status_code == 202
    assert same_key.json()["created"] is True and same_key.json()["campaign_id"] != campaign_id
    assert http.get(f"/v1/campaigns/{campaign_id}", headers=auth(ACME)).status_code == 200
    assert http.get(f"/v1/campaigns/{campaign_id}", headers=auth(GLOBEX)).status_code == 404


def test_metrics_name_no_campaign_by_default(http: httpx.Client) -> None:
    posted = http.post("/v1/campaigns", json=CAMPAIGN, headers=auth(ACME))
    metrics = http.get("/metrics")
    assert posted.status_code == 202 and metrics.status_code == 200
    assert "connectus_http_requests_total" in metrics.text
    assert "connectus_campaign_" not in metrics.text
    assert posted.json()["campaign_id"] not in metrics.text
    assert "Promo noviembre" not in metrics.text


# --- key namespaces (High 1) -------------------------------------------------------------


def test_a_message_keyed_campaign_k_then_campaign_k_over_http(http: httpx.Client) -> None:
    message = http.post("/v1/messages", json=SMS, headers=auth(PLAIN, "campaign:promo-nov"))
    campaign = http.post("/v1/campaigns", json=CAMPAIGN, headers=auth(PLAIN, "promo-nov"))
    assert message.status_code == 202, message.text
    assert campaign.status_code == 202 and campaign.json()["created"] is True
    campaign_id = campaign.json()["campaign_id"]
    assert campaign_id != message.json()["job_id"]
    assert http.get(f"/v1/campaigns/{campaign_id}", headers=auth(PLAIN)).status_code == 200


def test_campaign_k_then_a_message_keyed_campaign_k_over_http(http: httpx.Client) -> None:
    campaign = http.post("/v1/campaigns", json=CAMPAIGN, headers=auth(PLAIN, "promo-dic"))
    message = http.post("/v1/messages", json=SMS, headers=auth(PLAIN, "campaign:promo-dic"))
    assert campaign.status_code == 202
    assert message.status_code == 202, message.text  # was a 500
    job_id = message.json()["job_id"]
    record = http.get(f"/v1/messages/{job_id}", headers=auth(PLAIN)).json()
    assert record["idempotency_key"] == "campaign:promo-dic"


def test_a_key_named_job_id_is_not_the_automatic_key(http: httpx.Client) -> None:
    automatic = http.post("/v1/messages", json=SMS, headers=auth(PLAIN)).json()["job_id"]
    keyed = http.post(
        "/v1/messages", json={**SMS, "sms_content": "otro"}, headers=auth(PLAIN, f"job:{automatic}")
    )
    assert keyed.status_code == 202 and keyed.json()["job_id"] != automatic


def test_a_key_ending_in_lock_is_not_the_marker_of_another_key(
    http: httpx.Client, settings: Settings, redis_client: redis.Redis
) -> None:
    first = http.post("/v1/messages", json=SMS, headers=auth(PLAIN, "order-3:lock"))
    plain = http.post(
        "/v1/messages", json={**SMS, "sms_content": "otro"}, headers=auth(PLAIN, "order-3")
    )
    # The other way: X's request in flight (its marker held), then X:lock.
    marker = Keys(settings.key_prefix).http_lock(DEFAULT_TENANT, "order-4")
    redis_client.set(marker, "in-flight", px=30_000)
    locked = http.post("/v1/messages", json=SMS, headers=auth(PLAIN, "order-4:lock"))
    busy = http.post("/v1/messages", json=SMS, headers=auth(PLAIN, "order-4"))
    assert (first.status_code, plain.status_code, locked.status_code) == (202, 202, 202)
    assert busy.status_code == 409  # X itself is in flight: that marker still works
    assert redis_client.get(marker) == "in-flight"


def test_the_collision_from_python_on_a_real_redis(settings: Settings) -> None:
    producer = Producer(settings)
    campaigns = CampaignProducer(settings)
    job_id = producer.send_sms("56987688060", "hola", idempotency_key="campaign:promo-ene")
    accepted = campaigns.send(
        ROWS, CampaignOptions(name="Promo", text="Hola {name}", idempotency_key="promo-ene")
    )
    assert accepted.created and accepted.campaign_id != job_id
    assert campaigns.get(accepted.campaign_id) is not None
    assert producer.get_status(job_id).idempotency_key == "campaign:promo-ene"
