"""Tenants (issue 21, Medium 3): keys, reads and control are the tenant's own.

Producers and the in-process service on fakeredis; tests/integration/
test_tenants_http.py runs the same over real HTTP and a real Redis.
"""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from connectus_worker import producers
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import Settings, load_settings
from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.jobs import IdempotencyConflict
from connectus_worker.producers.api import JobNotFound, Producer
from connectus_worker.producers.campaign_control import CampaignControl, CampaignNotFound
from connectus_worker.producers.campaigns import CampaignProducer
from tests.support.service import NUMBER, SMS, TOKEN, invalid_params, problem, service

ACME = "tok-acme-0123456789abcdef"
GLOBEX = "tok-globex-0123456789abcdef"
TENANTS = f"acme:{ACME};globex:{GLOBEX}"
ROWS: list[dict[str, Any]] = [{"dst_number": "+56 9 8765 4321", "name": "Ana"}]


@pytest.fixture
def settings() -> Settings:
    return load_settings({})


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def acme_and_globex(settings: Settings, client: fakeredis.FakeRedis) -> tuple[Producer, Producer]:
    return (
        Producer(settings, tenant="acme", redis_client=client),
        Producer(settings, tenant="globex", redis_client=client),
    )


# --- producers ------------------------------------------------------------------------


def test_two_tenants_with_one_key_get_two_jobs(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    acme, globex = acme_and_globex(settings, redis_client)
    mine = acme.send_sms(NUMBER, "hola", idempotency_key="order-1")
    theirs = globex.send_sms(NUMBER, "otra cosa", idempotency_key="order-1")  # no conflict
    again = acme.send_sms(NUMBER, "hola", idempotency_key="order-1")
    assert mine != theirs and again == mine
    assert acme.get_status(mine).tenant == "acme"
    assert globex.get_status(theirs).tenant == "globex"
    with pytest.raises(IdempotencyConflict):
        acme.send_sms(NUMBER, "distinto", idempotency_key="order-1")


def test_another_tenants_job_is_not_found_and_not_cancelled(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    acme, globex = acme_and_globex(settings, redis_client)
    job_id = acme.send_sms(NUMBER, "hola")
    with pytest.raises(JobNotFound):
        globex.get_status(job_id)
    with pytest.raises(JobNotFound):
        Producer(settings, redis_client=redis_client).get_status(job_id)  # the default tenant
    assert globex.cancel(job_id) == "missing"
    assert acme.get_status(job_id).state.value == "queued"
    assert acme.cancel(job_id) == "cancelled"


def test_a_producer_without_a_tenant_is_the_default_tenants(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    default = Producer(settings, redis_client=redis_client)
    named = Producer(settings, tenant=DEFAULT_TENANT, redis_client=redis_client)
    job_id = default.send_sms(NUMBER, "hola", idempotency_key="k")
    assert named.send_sms(NUMBER, "hola", idempotency_key="k") == job_id
    assert named.get_status(job_id).tenant == "default"


def test_a_record_written_before_tenants_is_the_default_tenants(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    default = Producer(settings, redis_client=redis_client)
    acme, _ = acme_and_globex(settings, redis_client)
    job_id = default.send_sms(NUMBER, "hola")
    redis_client.hdel(default.store.keys.job(job_id), "tenant")  # as an older release wrote it
    assert default.get_status(job_id).tenant == "default"
    with pytest.raises(JobNotFound):
        acme.get_status(job_id)


@pytest.mark.parametrize("tenant", ["", "Acme", "a:b", "-x", "a" * 65, 7])
def test_a_bad_tenant_name_is_refused_naming_tenant(
    settings: Settings, redis_client: fakeredis.FakeRedis, tenant: Any
) -> None:
    with pytest.raises(InvalidInput) as info:
        Producer(settings, tenant=tenant, redis_client=redis_client)
    assert [error.field for error in info.value.errors] == ["tenant"]
    with pytest.raises(InvalidInput):
        CampaignProducer(settings, tenant=tenant, redis_client=redis_client)


def test_campaigns_are_the_tenants_own(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    acme = CampaignProducer(settings, tenant="acme", redis_client=redis_client)
    globex = CampaignProducer(settings, tenant="globex", redis_client=redis_client)
    options = CampaignOptions(name="Promo", text="Hola {name}", idempotency_key="promo-1")
    mine = acme.send(ROWS, options)
    theirs = globex.send(ROWS, options)
    assert mine.created and theirs.created and mine.campaign_id != theirs.campaign_id
    assert globex.get(mine.campaign_id) is None
    control = CampaignControl(globex.store, tenant="globex")
    for action in (control.status, control.pause, control.resume, control.cancel):
        with pytest.raises(CampaignNotFound):
            action(mine.campaign_id)
    assert CampaignControl(acme.store, tenant="acme").status(mine.campaign_id).campaign.state
    assert acme.store.get(mine.campaign_id).state.value == "scheduled"  # type: ignore[union-attr]
    # An operator's view (tenant=None) sees both.
    everyone = CampaignControl(acme.store, tenant=None)
    assert everyone.get(theirs.campaign_id).tenant == "globex"


def test_a_campaigns_jobs_are_its_tenants(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    campaigns = CampaignProducer(settings, tenant="acme", redis_client=redis_client)
    campaign_id = campaigns.send(ROWS, CampaignOptions(name="P", text="Hola {name}")).campaign_id
    acme, globex = acme_and_globex(settings, redis_client)
    # What the workers write when they release a recipient: a record naming only
    # its campaign (campaign/lua/lib_new_record.lua has no tenant field).
    job_id = f"{campaign_id}-0"
    redis_client.hset(
        acme.store.keys.job(job_id),
        mapping={"job_id": job_id, "kind": "sms", "state": "queued", "queue": "bulk",
                 "idempotency_key": f"campaign:{campaign_id}:0", "dst": "569****4321",
                 "created_at": 1, "updated_at": 1, "campaign": campaign_id},
    )  # fmt: skip
    assert acme.get_status(job_id).tenant == "acme"
    with pytest.raises(JobNotFound):
        globex.get_status(job_id)
    assert globex.cancel(job_id) == "missing"


# --- over HTTP (in process) -------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def as_(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.mark.anyio
async def test_http_tenants_keys_reads_and_conflicts() -> None:
    async with service(INTAKE_TENANTS=TENANTS) as svc:
        post = svc.client.post
        mine = await post("/v1/messages", json=SMS, headers=as_(ACME, **{"Idempotency-Key": "k1"}))
        theirs = await post(
            "/v1/messages", json=SMS, headers=as_(GLOBEX, **{"Idempotency-Key": "k1"})
        )
        job_id = mine.json()["job_id"]
        own = await svc.client.get(f"/v1/messages/{job_id}", headers=as_(ACME))
        other = await svc.client.get(f"/v1/messages/{job_id}", headers=as_(GLOBEX))
        default = await svc.client.get(f"/v1/messages/{job_id}", headers=as_(TOKEN))
        # The same key for another body, after the stored HTTP answer expired: the
        # job-level conflict, which names no job.
        svc.redis.delete(*svc.redis.keys(f"{svc.settings.key_prefix}:http-idem:*"))
        conflict = await post(
            "/v1/messages",
            json={**SMS, "sms_content": "otro"},
            headers=as_(ACME, **{"Idempotency-Key": "k1"}),
        )
    assert mine.status_code == theirs.status_code == 202
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["job_id"] != job_id
    assert own.status_code == 200 and own.json()["tenant"] == "acme"
    problem(other, 404)
    problem(default, 404)
    assert invalid_params(conflict) == {
        "Idempotency-Key": "was already used for a different message"
    }
    assert job_id not in conflict.text


@pytest.mark.anyio
async def test_http_another_tenants_campaign_is_a_404() -> None:
    body = {"name": "Promo", "kind": "sms", "text": "Hola {name}", "recipients": ROWS}
    async with service(INTAKE_TENANTS=TENANTS) as svc:
        posted = await svc.client.post("/v1/campaigns", json=body, headers=as_(ACME))
        campaign_id = posted.json()["campaign_id"]
        own = await svc.client.get(f"/v1/campaigns/{campaign_id}", headers=as_(ACME))
        other = await svc.client.get(f"/v1/campaigns/{campaign_id}", headers=as_(GLOBEX))
    assert posted.status_code == 202 and own.status_code == 200
    problem(other, 404)


def test_the_module_level_functions_send_as_the_configured_tenant(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    try:
        producers.configure(settings, redis_client=redis_client, tenant="acme")
        job_id = producers.send_sms(NUMBER, "hola", idempotency_key="k-mod")
        assert producers.get_status(job_id).tenant == "acme"
        producers.configure(settings, redis_client=redis_client)  # the default tenant
        with pytest.raises(JobNotFound):
            producers.get_status(job_id)
        assert producers.send_sms(NUMBER, "hola", idempotency_key="k-mod") != job_id
    finally:
        producers.configure(settings, redis_client=fakeredis.FakeRedis())
