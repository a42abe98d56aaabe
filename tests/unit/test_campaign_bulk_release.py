"""RELEASE_BULK (the pump's fast path for v1 bulk SMS chunks) against the generic RELEASE.

The same chunk is released both ways into two fakeredis servers, with the same
clock and an opted-out number: job records, counts and the cursor must be equal
field by field. The Lua phone mask must equal ``core.redaction.mask_phone``.
"""

from __future__ import annotations

import json

import fakeredis
import pytest

from core.campaign import scripts
from core.campaign.bulk_release import BulkRelease
from core.campaign.render import masked, payload_for
from core.campaign.store import CampaignStore, ReleasedJob, job_id_for
from core.keys import Keys
from core.redaction import mask_phone
from tests.support.clock import Clock
from worker.campaigns import chunk_message

NOW = 1_700_000_000_000
KEYS = Keys("t")
ROWS = [["56987650000", "Ana"], ["56987650001", "José Ñúñez"], ["56987650002", "x" * 170]]


def _store(clock: Clock) -> CampaignStore:
    store = CampaignStore(fakeredis.FakeRedis(), KEYS, ttl_s=3600, job_ttl_s=600, clock=clock)
    store.write_chunks("c1", ROWS, chunk_size=2)
    fields = {"campaign_id": "c1", "name": "promo", "kind": "sms", "transport": "v1_bulk",
              "state": "running", "text": "Hola {name}", "subject": "",
              "fields": json.dumps(["name"]), "src": "", "timezone": "America/Santiago",
              "deliver_at": NOW, "window": "", "max_lateness_s": 0, "total": 3, "chunks": 2,
              "chunk_size": 2, "cursor": 0, "segments": 4, "created_at": NOW}  # fmt: skip
    store.commit("c1", fields, fingerprint="fp", idempotency_key=None)
    store.client.sadd(KEYS.opt_out, "56987650001")
    return store


def _generic(store: CampaignStore, number: int) -> bool:
    campaign = store.get("c1")
    assert campaign is not None and campaign.cursor == number
    rows = store.chunk("c1", number)
    flags = store.opted_out([r[0] for r in rows])
    jobs = []
    for offset, (row, out) in enumerate(zip(rows, flags, strict=True)):
        index = number * campaign.chunk_size + offset
        _, units = payload_for(campaign, row)
        jobs.append(ReleasedJob(job_id_for("c1", index), f"campaign:c1:{index}",
                                masked(campaign, row[0]), units, None, out))  # fmt: skip
    message = chunk_message("bulk", "c1", number)
    return store.release(campaign, jobs, queue="bulk", chunk_message=message)


def _fast(store: CampaignStore, number: int) -> bool:
    campaign = store.get("c1")
    assert campaign is not None and campaign.cursor == number
    rows = store.chunk("c1", number)
    segments = [payload_for(campaign, row)[1] for row in rows]
    message = chunk_message("bulk", "c1", number)
    return BulkRelease(store).release(campaign, segments, queue="bulk", chunk_message=message)


def _state(store: CampaignStore) -> tuple[object, ...]:
    client = store.client
    jobs = {i: client.hgetall(KEYS.job(job_id_for("c1", i))) for i in range(3)}
    ttls = [client.ttl(KEYS.job(job_id_for("c1", i))) for i in range(3)]
    queued = [json.loads(client.hget(KEYS.queue_messages("bulk"), rid))["kwargs"]
              for rid in client.lrange(KEYS.queue("bulk"), 0, -1)]  # fmt: skip
    campaign = store.get("c1")
    assert campaign is not None
    return jobs, ttls, queued, store.counts("c1"), campaign.cursor


def test_the_fast_release_writes_what_the_generic_one_writes() -> None:
    generic, fast = _store(Clock(NOW)), _store(Clock(NOW))
    for number in (0, 1):
        assert _generic(generic, number) and _fast(fast, number)
    assert _state(fast) == _state(generic)
    jobs, _, queued, counts, cursor = _state(fast)
    assert jobs[1][b"state"] == b"cancelled" and jobs[1][b"error_class"] == b"OptedOut"
    assert jobs[2][b"segments"] == b"2" and jobs[0][b"dst"] == b"569*****000"
    assert counts == {"queued": 2, "cancelled": 1} and cursor == 2 and len(queued) == 2


def test_the_fast_release_is_compare_and_set_and_never_overwrites_a_job() -> None:
    store = _store(Clock(NOW))
    campaign = store.get("c1")
    assert campaign is not None
    release = BulkRelease(store)
    message = chunk_message("bulk", "c1", 0)
    store.client.hset(KEYS.job("c1-0"), mapping={"state": "sent", "job_id": "c1-0"})
    assert release.release(campaign, [1, 1], queue="bulk", chunk_message=message)
    # The cursor moved: the same release again is refused, nothing more is queued.
    assert not release.release(campaign, [1, 1], queue="bulk", chunk_message=message)
    assert store.client.hget(KEYS.job("c1-0"), "state") == b"sent"
    assert store.counts("c1") == {"cancelled": 1}
    assert store.client.llen(KEYS.queue("bulk")) == 1


def test_the_fast_release_refuses_a_campaign_that_is_not_running() -> None:
    store = _store(Clock(NOW))
    store.client.hset(KEYS.campaign("c1"), "state", "paused")
    campaign = store.get("c1")
    assert campaign is not None
    message = chunk_message("bulk", "c1", 0)
    assert not BulkRelease(store).release(campaign, [1, 1], queue="bulk", chunk_message=message)
    assert store.client.llen(KEYS.queue("bulk")) == 0 and store.counts("c1") == {}


@pytest.mark.parametrize(
    "number",
    ["56987654321", "+56987654321", "+56 9 8765 4321", "1234567", "12345678", "123456789",
     "5698765432100", "", "  +569-8765-4321"],
)  # fmt: skip
def test_the_lua_phone_mask_is_mask_phone(number: str) -> None:
    client = fakeredis.FakeRedis()
    lua = client.register_script(scripts._MASK_PHONE + "return mask_phone(ARGV[1])")
    assert lua(args=[number]).decode() == mask_phone(number)
