"""The campaign scripts on fakeredis (Lua): commit, release, the claim gate, counts,
parking, control. An injected clock; no network."""

from __future__ import annotations

import json

import fakeredis
import pytest

from connectus_worker.campaign.model import CampaignState, Transport
from connectus_worker.campaign.store import CampaignConflict, CampaignStore, ReleasedJob, job_id_for
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.jobs_batch import BatchLedger
from connectus_worker.ledger.keys import Keys

NOW = 1_700_000_000_000
S = CampaignState


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def campaigns(redis_client: fakeredis.FakeRedis) -> CampaignStore:
    return CampaignStore(redis_client, Keys("t"), ttl_s=3600, job_ttl_s=600, clock=lambda: NOW)


@pytest.fixture
def jobs(redis_client: fakeredis.FakeRedis) -> JobStore:
    return JobStore(redis_client, Keys("t"), ttl_s=600, clock=lambda: NOW)


def _fields(cid: str, *, total: int, chunk_size: int = 2, transport: str = "v3") -> dict:
    return {"campaign_id": cid, "name": "promo", "kind": "sms", "transport": transport,
            "state": "scheduled", "text": "Hola {name}", "subject": "",
            "fields": json.dumps(["name"]), "src": "", "timezone": "America/Santiago",
            "deliver_at": NOW, "window": "", "max_lateness_s": 0, "total": total,
            "chunks": -(-total // chunk_size), "chunk_size": chunk_size, "cursor": 0,
            "segments": total, "created_at": NOW}  # fmt: skip


def _create(campaigns: CampaignStore, cid: str = "c1", total: int = 4, key: str | None = None,
            fp: str = "fp"):  # fmt: skip
    rows = [[f"5698765432{i}", f"n{i}"] for i in range(total)]
    assert campaigns.write_batches(cid, [rows], chunk_size=2) == total
    return campaigns.commit(cid, _fields(cid, total=total), fingerprint=fp, idempotency_key=key)


def _release(campaigns: CampaignStore, cid: str = "c1") -> bool:
    campaign = campaigns.get(cid)
    assert campaign is not None
    rows = campaigns.chunk(cid, campaign.cursor)
    released = []
    for offset, row in enumerate(rows):
        index = campaign.cursor * campaign.chunk_size + offset
        job_id = job_id_for(cid, index)
        job = {"job_id": job_id, "kind": "sms", "key": f"campaign:{cid}:{index}", "queue": "bulk",
               "payload": {"dst_number": row[0], "sms_content": "x"}, "campaign": cid}  # fmt: skip
        released.append(ReleasedJob(job_id, job["key"], "569****", 1,
                                    new_message("bulk", "send_sms", job)))  # fmt: skip
    return campaigns.release(campaign, released, queue="bulk")


def _queue_len(redis_client: fakeredis.FakeRedis) -> int:
    return int(redis_client.llen(Keys("t").queue("bulk")))


def test_commit_stores_chunks_and_lists_the_campaign(campaigns: CampaignStore) -> None:
    created = _create(campaigns, total=5)
    assert created.created and created.campaign_id == "c1"
    campaign = campaigns.get("c1")
    assert campaign is not None and campaign.state is S.SCHEDULED and campaign.chunks == 3
    assert campaign.transport is Transport.V3 and campaign.fields == ("name",)
    assert campaigns.chunk("c1", 2) == [["56987654324", "n4"]]
    assert campaigns.active_ids() == ["c1"]
    assert [c.campaign_id for c in campaigns.recent()] == ["c1"]


def test_same_key_same_definition_returns_the_first_campaign(campaigns: CampaignStore) -> None:
    _create(campaigns, "c1", key="k")
    again = _create(campaigns, "c2", key="k")
    assert again == type(again)("c1", False)
    assert campaigns.get("c2") is None
    with pytest.raises(CampaignConflict, match="idempotency_key: already used by campaign c1"):
        _create(campaigns, "c3", key="k", fp="other")


def test_nothing_is_released_before_the_campaign_runs(campaigns, redis_client) -> None:
    _create(campaigns)
    assert not _release(campaigns)
    assert _queue_len(redis_client) == 0


def test_release_is_compare_and_set_on_the_cursor(campaigns, redis_client) -> None:
    _create(campaigns)
    assert campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED}).status == "ok"
    stale = campaigns.get("c1")
    assert _release(campaigns)
    assert campaigns.get("c1").cursor == 1
    # A second pump that read the campaign before the first release loses.
    assert not campaigns.release(stale, [], queue="bulk")
    assert _queue_len(redis_client) == 2
    assert campaigns.counts("c1") == {"queued": 2}


def test_counts_follow_every_job_transition(campaigns, jobs) -> None:
    _create(campaigns)
    campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED})
    _release(campaigns)
    claim = jobs.claim("c1-0", worker_id="w", lease_ms=1000, token="t")
    assert claim.status == "ok"
    assert campaigns.counts("c1") == {"queued": 1, "sending": 1}
    assert jobs.finish(Finish("c1-0", claim.fence, "done", {"state": "sent", "provider_id": "p1"}))
    assert campaigns.counts("c1") == {"queued": 1, "sent": 1}
    assert jobs.cancel("c1-1") == "cancelled"
    assert campaigns.counts("c1") == {"sent": 1, "cancelled": 1}


def test_a_paused_campaign_gates_claims_and_resume_unparks(campaigns, jobs, redis_client) -> None:
    _create(campaigns)
    campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED})
    _release(campaigns)
    assert campaigns.transition("c1", S.PAUSED, allowed_from={S.RUNNING}).status == "ok"
    claim = jobs.claim("c1-0", worker_id="w", lease_ms=1000, token="t")
    assert (claim.status, claim.detail) == ("paused", "paused")
    assert jobs.get("c1-0").state.value == "queued"
    message = new_message("bulk", "send_sms", {"job_id": "c1-0"})
    redis_client.delete(Keys("t").queue("bulk"))
    assert campaigns.park("c1", "c1-0", message) == "parked"
    assert _queue_len(redis_client) == 0 and campaigns.parked("c1") == 1
    assert campaigns.transition("c1", S.RUNNING, allowed_from={S.PAUSED}).status == "ok"
    assert _queue_len(redis_client) == 1 and campaigns.parked("c1") == 0
    assert jobs.claim("c1-0", worker_id="w", lease_ms=1000, token="t").status == "ok"


def test_park_after_resume_queues_at_once(campaigns, redis_client) -> None:
    _create(campaigns)
    campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED})
    message = new_message("bulk", "send_sms", {"job_id": "c1-0"})
    assert campaigns.park("c1", "c1-0", message) == "queued"
    assert _queue_len(redis_client) == 1


def test_cancel_cancels_parked_jobs_and_the_next_claim(campaigns, jobs) -> None:
    _create(campaigns)
    campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED})
    _release(campaigns)
    campaigns.transition("c1", S.PAUSED, allowed_from={S.RUNNING})
    campaigns.park("c1", "c1-0", new_message("bulk", "send_sms", {"job_id": "c1-0"}))
    result = campaigns.transition("c1", S.CANCELLED, allowed_from={S.PAUSED})
    assert (result.status, result.state) == ("ok", "paused")
    assert jobs.get("c1-0").state.value == "cancelled"
    claim = jobs.claim("c1-1", worker_id="w", lease_ms=1000, token="t")
    assert (claim.status, claim.detail) == ("done", "cancelled")
    assert campaigns.counts("c1") == {"cancelled": 2}
    assert campaigns.active_ids() == []


def test_finished_only_when_all_released_and_none_pending(campaigns, jobs) -> None:
    _create(campaigns, total=2)
    campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED})
    assert campaigns.transition("c1", S.FINISHED, allowed_from={S.RUNNING}).status == "refused"
    _release(campaigns)
    assert campaigns.transition("c1", S.FINISHED, allowed_from={S.RUNNING}).status == "refused"
    for job_id in ("c1-0", "c1-1"):
        claim = jobs.claim(job_id, worker_id="w", lease_ms=1000, token="t")
        jobs.finish(Finish(job_id, claim.fence, "done", {"state": "sent"}))
    assert campaigns.transition("c1", S.FINISHED, allowed_from={S.RUNNING}).status == "ok"
    assert campaigns.active_ids() == []


def test_claims_and_finish_many(campaigns, jobs) -> None:
    _create(campaigns)
    campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED})
    _release(campaigns)
    batch = BatchLedger(jobs)
    claims = [jobs.claim(j, worker_id="w", lease_ms=1000, token="b") for j in ("c1-0", "c1-1")]
    assert [c.status for c in claims] == ["ok", "ok"]
    landed = batch.finish_many([
        Finish("c1-0", claims[0].fence, "done", {"state": "sent", "provider_id": "p0"}),
        Finish("c1-1", claims[1].fence + 1, "done", {"state": "sent"}),  # fenced out
    ])  # fmt: skip
    assert landed == [True, False]
    assert jobs.job_for_provider_id("p0") == "c1-0"
    assert campaigns.counts("c1") == {"sent": 1, "sending": 1}


def test_an_unknown_outcome_holds_finished(campaigns, jobs) -> None:
    _create(campaigns, total=2)
    campaigns.transition("c1", S.RUNNING, allowed_from={S.SCHEDULED})
    _release(campaigns)
    first = jobs.claim("c1-0", worker_id="w", lease_ms=1000, token="t")
    jobs.finish(Finish("c1-0", first.fence, "done", {"state": "sent"}))
    second = jobs.claim("c1-1", worker_id="w", lease_ms=1000, token="t")
    message = new_message("bulk", "send_sms", {"job_id": "c1-1"})
    jobs.finish(Finish("c1-1", second.fence, "unknown", {"state": "unknown"}, message))
    assert campaigns.counts("c1") == {"sent": 1, "unknown": 1}
    # It may still be sent (reconciliation): the campaign is not finished.
    assert campaigns.transition("c1", S.FINISHED, allowed_from={S.RUNNING}).status == "refused"
    assert jobs.resolve("c1-1", "sent", provider_id="p1")
    assert campaigns.transition("c1", S.FINISHED, allowed_from={S.RUNNING}).status == "ok"
