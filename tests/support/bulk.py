"""A released v1_bulk campaign on fakeredis and a BulkSender for it (tests of worker.bulk).

The fixtures (``clock``, ``client``, ``campaigns``, ``jobs``, ``released``) are
imported by name into the test modules that use them.
"""

from __future__ import annotations

import json
import random
from typing import Any

import fakeredis
import httpx
import pytest

from connectus_worker.campaign.store import CampaignStore
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.worker.bulk import BulkSender
from connectus_worker.worker.campaign_messages import BULK_ACTOR
from connectus_worker.worker.campaigns import CampaignPump
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.ratelimit import RateLimiter
from tests.support.clock import Clock
from tests.support.connectus import Recorder, make_client

NOW = 1_700_000_000_000
CID = "c1"
KEYS = Keys("t")
DSTS = [f"5698765432{i}" for i in range(5)]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def campaigns(client: fakeredis.FakeRedis, clock: Clock) -> CampaignStore:
    return CampaignStore(client, KEYS, ttl_s=3600, job_ttl_s=600, clock=clock)


@pytest.fixture
def jobs(client: fakeredis.FakeRedis, clock: Clock) -> JobStore:
    return JobStore(client, KEYS, ttl_s=600, clock=clock)


@pytest.fixture
def released(campaigns: CampaignStore, clock: Clock, client: fakeredis.FakeRedis) -> str:
    """A running v1_bulk campaign whose only chunk the pump has released."""
    rows = [[dst, f"n{i}"] for i, dst in enumerate(DSTS)]
    campaigns.write_batches(CID, [rows])
    fields = {"campaign_id": CID, "name": "promo", "kind": "sms", "transport": "v1_bulk",
              "state": "scheduled", "text": "Hola {name}", "subject": "",
              "fields": json.dumps(["name"]), "src": "", "timezone": "America/Santiago",
              "deliver_at": NOW, "window": "", "max_lateness_s": 0, "total": len(rows),
              "chunks": 1, "chunk_size": 1000, "cursor": 0, "segments": len(rows),
              "created_at": NOW}  # fmt: skip
    campaigns.commit(CID, fields, fingerprint="fp", idempotency_key=None)
    pump = CampaignPump(store=campaigns, queue="bulk", max_pending=1000, owner="p", clock=clock)
    assert pump.step(campaign_of(campaigns)) == 1  # scheduled -> running, chunk 0 released
    assert [m["actor_name"] for m in queued(client)] == [BULK_ACTOR]
    client.delete(KEYS.queue("bulk"), KEYS.queue_messages("bulk"))  # "delivered" to us
    assert campaigns.counts(CID) == {"queued": 5}
    return CID


def campaign_of(campaigns: CampaignStore) -> Any:
    campaign = campaigns.get(CID)
    assert campaign is not None
    return campaign


def bulk_sender(campaigns: CampaignStore, jobs: JobStore, clock: Clock, *answers: Any,
                max_retries: int = 3, limiter: RateLimiter | None = None,
                **client_options: Any) -> tuple[BulkSender, Recorder]:  # fmt: skip
    api, recorder = make_client(*answers, **client_options)
    policy = RetryPolicy(max_retries=max_retries, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=86_400)  # fmt: skip
    sender = BulkSender(campaigns=campaigns, jobs=jobs, client=api, policy=policy, queue="bulk",
                        worker_id="w1", lease_ms=60_000, clock=clock, rng=random.Random(7),
                        limiter=limiter, acquire_timeout_s=0)  # fmt: skip
    return sender, recorder


def bulk_answer(items: list[dict[str, str]], id_delivery: str = "dlv-1") -> httpx.Response:
    return httpx.Response(200, json={"id_delivery": id_delivery, "messages": items})


def all_sent(count: int = 5, start: int = 0) -> httpx.Response:
    return bulk_answer([{"id_sms": f"sms-{start + i}"} for i in range(count)])


def queued(client: fakeredis.FakeRedis, queue: str = "bulk") -> list[dict[str, Any]]:
    ids = client.lrange(KEYS.queue(queue), 0, -1)
    return [json.loads(client.hget(KEYS.queue_messages(queue), i)) for i in ids]
