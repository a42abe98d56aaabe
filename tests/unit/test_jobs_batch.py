"""BatchLedger against JobStore on fakeredis: finishing many jobs in one script
(counts written once per batch) leaves exactly what one call per job leaves:
records, campaign counts, leases, unknown jobs and provider index."""

from __future__ import annotations

import fakeredis

from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.jobs_batch import BatchLedger
from connectus_worker.ledger.keys import Keys
from tests.support.clock import Clock

NOW = 1_700_000_000_000
KEYS = Keys("t")
# job id -> (state, campaign, lease_until): every branch of claim() in one batch.
JOBS = {
    "a-0": ("queued", "a", None),
    "a-1": ("retrying", "a", None),
    "a-2": ("sent", "a", None),
    "a-3": ("sending", "a", NOW - 1),  # its lease ran out: expired -> unknown
    "a-4": ("sending", "a", NOW + 60_000),  # leased by another worker: busy
    "b-0": ("queued", "b", None),  # campaign b is cancelled
    "c-0": ("queued", "c", None),  # campaign c is paused
    "solo": ("queued", None, None),  # not a campaign job
}


def _ledger() -> tuple[JobStore, fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis()
    for job_id, (state, campaign, lease_until) in JOBS.items():
        record = {"job_id": job_id, "state": state, "fence": 3, "attempts": 2}
        if campaign:
            record["campaign"] = campaign
            client.hincrby(KEYS.campaign_counts(campaign), state, 1)
        if lease_until:
            record |= {"lease_until": lease_until, "claim_token": "other"}
            client.zadd(KEYS.leases, {job_id: lease_until})
        client.hset(KEYS.job(job_id), mapping=record)
    for campaign, state in (("a", "running"), ("b", "cancelled"), ("c", "paused")):
        client.hset(KEYS.campaign(campaign), "state", state)
    return JobStore(client, KEYS, ttl_s=600, clock=Clock(NOW)), client


def _everything(client: fakeredis.FakeRedis) -> dict[bytes, object]:
    out: dict[bytes, object] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key)
        if kind == b"hash":
            out[key] = client.hgetall(key)
        elif kind == b"zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = client.get(key)
    return out


def test_finish_sent_many_leaves_what_one_finish_per_job_leaves() -> None:
    (one, one_client), (many, many_client) = _ledger(), _ledger()
    ids = ["a-0", "a-1", "solo"]
    fences = [one.claim(j, worker_id="w", lease_ms=1, token="tk").fence for j in ids]
    assert [many.claim(j, worker_id="w", lease_ms=1, token="tk").fence for j in ids] == fences
    fields = {"state": "sent", "outcome": "sent", "sent_at": NOW}
    for job_id, fence in zip(ids, fences, strict=True):
        assert one.finish(Finish(job_id, fence, "done", {**fields, "provider_id": f"p-{job_id}",
                                          "updated_at": NOW}))  # fmt: skip
        one_client.set(KEYS.provider(f"p-{job_id}"), job_id, ex=600)
    items = [(j, f, f"p-{j}") for j, f in zip(ids, fences, strict=True)]
    # A stale fence does not land, and changes nothing.
    assert BatchLedger(many).finish_sent_many([("a-0", 99, "p-x"), *items], fields) == [
        False, True, True, True,
    ]  # fmt: skip
    assert _everything(many_client) == _everything(one_client)
    # Only the leases of the jobs not finished here are left.
    assert many_client.zrange(KEYS.leases, 0, -1) == [b"a-3", b"a-4"]
