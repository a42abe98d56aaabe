"""The search index, event ring and outcome history on a real Redis, written by the
real scripts: jobs enqueued through the producer, campaign records made by the v1
bulk claim, outcomes recorded by the finish scripts; and, last, jobs sent by real
worker processes to the sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from connectus_worker.config import Settings, load_settings
from connectus_worker.domain.models import State
from connectus_worker.ledger.history import campaign_series, series
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.jobs_batch import BatchLedger, BulkChunk
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.lookup import find_jobs, job_history
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.stack_checks import settle
from tests.support.waiting import wait_for


@pytest.fixture
def client(redis_settings: Settings, redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """A bytes client, as the producers and workers use (``redis_client`` deletes the
    prefix's keys after the test)."""
    raw = redis.Redis.from_url(redis_settings.redis_url)
    try:
        yield raw
    finally:
        raw.close()


def _settings(redis_settings: Settings, **env: str) -> Settings:
    base = {"REDIS_URL": redis_settings.redis_url, "KEY_PREFIX": redis_settings.key_prefix}
    return load_settings({**base, "CONNECTUS_DEFAULT_SRC_EMAIL": "contacto@empresa.cl", **env})


def _find(client: redis.Redis, settings: Settings, query: str) -> list[str]:
    keys = Keys(settings.key_prefix)
    return find_jobs(client, keys, query, content_hash_key=settings.content_key)


def test_each_key_finds_its_job_and_tenants_keys_do_not_collide(
    redis_settings: Settings, client: redis.Redis
) -> None:
    settings = _settings(redis_settings)
    acme = Producer(settings, tenant="acme", redis_client=client)
    beta = Producer(settings, tenant="beta", redis_client=client)
    sms = acme.send_sms("+56 9 8765 4321", "Hola", idempotency_key="ord-1", correlation_id="r1")
    mail = beta.send_email("Ana.Diaz@Example.com", "Asunto", "Hola", idempotency_key="ord-1")
    assert sms != mail
    assert _find(client, settings, sms) == [sms]
    assert _find(client, settings, "r1") == [sms]
    assert sorted(_find(client, settings, "ord-1")) == sorted([sms, mail])
    assert _find(client, settings, "56987654321") == [sms]
    assert _find(client, settings, "ana.diaz@example.com") == [mail]
    # Only the full value: a prefix, a suffix or the masked form find nothing.
    for part in ("5698765432", "987654", "569*****321", "ana.diaz", "example.com"):
        assert _find(client, settings, part) == [], part
    # Another digest key (another deployment's CONTENT_HASH_KEY) finds nothing.
    keys = Keys(settings.key_prefix)
    assert find_jobs(client, keys, "56987654321", content_hash_key=b"k" * 32) == []
    # Each tenant's idempotency key still answers its own job.
    assert acme.send_sms("56987654321", "Hola", idempotency_key="ord-1") == sms


def test_the_history_of_a_job_finished_by_the_real_scripts(
    redis_settings: Settings, client: redis.Redis
) -> None:
    settings = _settings(redis_settings)
    keys = Keys(settings.key_prefix)
    job = Producer(settings, redis_client=client).send_otp("56987654321", "Código 482913")
    store = JobStore(client, keys, ttl_s=settings.job_ttl_s)
    claim = store.claim(job, worker_id="w1", lease_ms=30_000)
    assert store.finish(
        Finish(job, claim.fence, "done", {"state": "sent", "outcome": "sent", "provider_id": "9"})
    )
    history = job_history(client, keys, job)
    assert history is not None and history.state == "sent" and history.provider_id == "9"
    assert [e.event for e in history.events] == ["queued", "sent"]
    assert "482913" not in history.model_dump_json() and history.dst == "569*****321"
    buckets = series(client, keys, now_s=time.time(), span="hour")
    assert sum(b.sent for b in buckets[-2:]) == 1


def test_campaign_records_made_by_the_bulk_claim_are_found_by_recipient(
    redis_settings: Settings, client: redis.Redis
) -> None:
    settings = _settings(redis_settings)
    keys = Keys(settings.key_prefix)
    client.hset(keys.campaign("c1"), mapping={"state": "running"})
    client.hset(keys.campaign_counts("c1"), "queued", 2)
    store = JobStore(client, keys, ttl_s=settings.job_ttl_s)
    ledger = BatchLedger(store)
    rows = [("56987654321", "569*****321", 1), ("56987651111", "569*****111", 1)]
    claims = ledger.claim_bulk(BulkChunk("c1", 0, 0, "sms", "bulk", 3600), rows,
                               worker_id="w1", lease_ms=30_000, token="t",
                               recipient_key=settings.content_key)  # fmt: skip
    assert [c.status for c in claims] == ["ok", "ok"]
    assert _find(client, settings, "+56 9 8765 1111") == ["c1-1"]
    assert _find(client, settings, "campaign:c1:0") == ["c1-0"]
    landed = ledger.finish_sent_many([("c1-0", 1, "p0"), ("c1-1", 1, "p1")], {"state": "sent"})
    assert landed == [True, True]
    history = job_history(client, keys, "c1-1")
    assert history is not None and history.campaign == "c1"
    assert [(e.event, e.detail) for e in history.events] == [
        ("sending", "campaign c1"),
        ("sent", "attempt 1"),
    ]
    buckets = series(client, keys, now_s=time.time(), span="hour")
    assert sum(b.sent for b in buckets[-2:]) == 2
    assert sum(b.sent for b in campaign_series(client, keys, "c1")) == 2


def test_index_entries_expire_with_the_record(
    redis_settings: Settings, client: redis.Redis
) -> None:
    settings = _settings(redis_settings, JOB_TTL_S="1")
    keys = Keys(settings.key_prefix)
    job = Producer(settings, redis_client=client).send_sms(
        "56987654321", "Hola", idempotency_key="exp-1", correlation_id="exp-c"
    )
    index = [keys.find_idempotency("exp-1"), keys.find_correlation("exp-c")]
    assert _find(client, settings, "exp-1") == [job]
    assert all(0 < client.pttl(k) <= 1000 for k in [keys.job(job), *index])
    wait_for(lambda: not client.exists(keys.job(job)), timeout_s=5, what="record expiry")
    wait_for(lambda: not client.exists(*index), timeout_s=2, what="index expiry")
    assert not client.keys(f"{settings.key_prefix}:find:*")
    assert _find(client, settings, "56987654321") == []


def test_jobs_sent_by_real_workers_show_their_history_and_are_counted(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack()
    settings = stack.settings
    producer = Producer(settings)
    keys = Keys(settings.key_prefix)
    before = time.time()
    sms = producer.send_sms("+56 9 8765 4321", "Hola", idempotency_key="real-1")
    mail = producer.send_email(
        "Ana@Example.com", "Hola", "<p>Hola</p>", src_email="contacto@empresa.cl"
    )
    records = settle(producer, [sms, mail])
    assert {records[j].state for j in (sms, mail)} == {State.SENT}
    for job_id in (sms, mail):
        history = job_history(producer.redis, keys, job_id)
        assert history is not None and history.provider_id == records[job_id].provider_id
        assert [e.event for e in history.events][:2] == ["queued", "sent"]
        assert history.events[1].detail == "attempt 1"
    assert _find(producer.redis, settings, "real-1") == [sms]
    assert _find(producer.redis, settings, "987654321") == [sms]
    assert _find(producer.redis, settings, "ana@example.com") == [mail]
    buckets = series(producer.redis, keys, now_s=time.time(), span="hour")
    assert sum(b.sent for b in buckets if b.start_s >= before - 60) == 2
