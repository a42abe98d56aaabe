"""A v1 bulk chunk's records are made by its first claim (RELEASE_BULK + CLAIM_BULK).

The reference is the generic path: RELEASE making every record when the chunk
is released, then CLAIM_MANY claiming them. The same chunks go both ways into
two fakeredis servers, with the same clock and an opted-out number: after the
claim, job records, TTLs, leases and counts must be equal field by field.
Then every path around a chunk not claimed yet: a redelivery, a paused or
cancelled campaign, the cancel of a parked chunk, a chunk released by the
older code, and what the readers show meanwhile.
"""

from __future__ import annotations

import io
import json

import fakeredis
import pytest

from connectus_worker.campaign.model import Campaign, CampaignState
from connectus_worker.campaign.pending import placeholder
from connectus_worker.campaign.render import masked, payload_for
from connectus_worker.campaign.store import CampaignStore, ReleasedJob, job_id_for
from connectus_worker.config import load_settings
from connectus_worker.ledger.claims import Claim
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.jobs_batch import BatchLedger, BulkChunk
from connectus_worker.ledger.keys import Keys
from connectus_worker.logging.redaction import mask_phone
from connectus_worker.luascript import load
from connectus_worker.producers.api import JobNotFound, Producer
from connectus_worker.producers.campaign_control import CampaignControl
from connectus_worker.worker.campaign_messages import chunk_message
from tests.support.clock import Clock

NOW = 1_700_000_000_000
KEYS = Keys("t")
ROWS = [["56987650000", "Ana"], ["56987650001", "José Ñúñez"], ["56987650002", "x" * 170]]
S = CampaignState


def _store(clock: Clock, state: str = "running") -> CampaignStore:
    store = CampaignStore(fakeredis.FakeRedis(), KEYS, ttl_s=3600, job_ttl_s=600, clock=clock)
    store.write_batches("c1", [ROWS], chunk_size=2)
    fields = {"campaign_id": "c1", "name": "promo", "kind": "sms", "transport": "v1_bulk",
              "state": state, "text": "Hola {name}", "subject": "",
              "fields": json.dumps(["name"]), "src": "", "timezone": "America/Santiago",
              "deliver_at": NOW, "window": "", "max_lateness_s": 0, "total": 3, "chunks": 2,
              "chunk_size": 2, "cursor": 0, "segments": 4, "created_at": NOW}  # fmt: skip
    store.commit("c1", fields, fingerprint="fp", idempotency_key=None)
    store.client.sadd(KEYS.opt_out, "56987650001")
    return store


def _campaign(store: CampaignStore) -> Campaign:
    campaign = store.get("c1")
    assert campaign is not None
    return campaign


def _ids(number: int) -> list[str]:
    return [job_id_for("c1", i) for i in range(number * 2, min(number * 2 + 2, len(ROWS)))]


def _release(store: CampaignStore, number: int) -> bool:
    campaign = _campaign(store)
    assert campaign.cursor == number
    message = chunk_message("bulk", "c1", number)
    return store.release_bulk(campaign, queue="bulk", chunk_message=message)


def _claim(store: CampaignStore, number: int, *, delivery: str = "tk") -> list[Claim]:
    campaign = _campaign(store)
    rows = store.chunk("c1", number)
    made = [(row[0], masked(campaign, row[0]), payload_for(campaign, row)[1]) for row in rows]
    jobs = JobStore(store.client, KEYS, ttl_s=600, clock=store.clock)
    chunk = BulkChunk("c1", number, number * 2, "sms", "bulk", 3600)
    return BatchLedger(jobs).claim_bulk(chunk, made, worker_id="w", lease_ms=30_000, token=delivery)


def _generic(store: CampaignStore, number: int) -> list[Claim]:
    """The reference: records made at release (RELEASE), then one claim per job."""
    campaign = _campaign(store)
    rows = store.chunk("c1", number)
    flags = store.opted_out([r[0] for r in rows])
    jobs = []
    for offset, (row, out) in enumerate(zip(rows, flags, strict=True)):
        index = number * 2 + offset
        _, units = payload_for(campaign, row)
        jobs.append(ReleasedJob(job_id_for("c1", index), f"campaign:c1:{index}",
                                masked(campaign, row[0]), units, None, out))  # fmt: skip
    message = chunk_message("bulk", "c1", number)
    assert store.release(campaign, jobs, queue="bulk", chunk_message=message)
    jobs_store = JobStore(store.client, KEYS, ttl_s=600, clock=store.clock)
    return [jobs_store.claim(j, worker_id="w", lease_ms=30_000, token="tk") for j in _ids(number)]


def _state(store: CampaignStore) -> tuple[object, ...]:
    client = store.client
    ids = _ids(0) + _ids(1)
    # Without the event rings (ledger.lookup): the reference path records a 'queued'
    # event at its release, which the lazy claim rightly never goes through.
    jobs = {
        i: {k: v for k, v in client.hgetall(KEYS.job(i)).items() if not k.startswith(b"ev")}
        for i in ids
    }
    ttls = [client.ttl(KEYS.job(i)) for i in ids]
    leases = client.zrange(KEYS.leases, 0, -1, withscores=True)
    return jobs, ttls, leases, store.counts("c1"), _campaign(store).cursor


def test_records_made_by_the_claim_equal_those_made_at_release_then_claimed() -> None:
    lazy, generic = _store(Clock(NOW)), _store(Clock(NOW))
    for number in (0, 1):
        assert _release(lazy, number)
        assert [c.status for c in _claim(lazy, number)] == [
            c.status for c in _generic(generic, number)
        ]
    assert _state(lazy) == _state(generic)
    jobs, _, leases, counts, cursor = _state(lazy)
    assert jobs["c1-1"][b"state"] == b"cancelled" and jobs["c1-1"][b"error_class"] == b"OptedOut"
    assert jobs["c1-2"][b"segments"] == b"2" and jobs["c1-0"][b"dst"] == b"569*****000"
    assert jobs["c1-0"][b"state"] == b"sending" and jobs["c1-0"][b"fence"] == b"1"
    assert counts == {"sending": 2, "cancelled": 1} and cursor == 2 and len(leases) == 2


def test_the_release_makes_no_record_and_is_compare_and_set() -> None:
    store = _store(Clock(NOW))
    stale = _campaign(store)  # cursor 0, as read before the release
    assert _release(store, 0)
    assert store.client.keys(KEYS.job("*")) == []
    assert store.counts("c1") == {"queued": 2} and store.client.llen(KEYS.queue("bulk")) == 1
    # The cursor moved: the same release again is refused, nothing more is queued.
    assert not store.release_bulk(stale, queue="bulk", chunk_message=chunk_message("bulk", "c1", 0))
    assert store.counts("c1") == {"queued": 2} and store.client.llen(KEYS.queue("bulk")) == 1
    assert _release(store, 1) and store.counts("c1") == {"queued": 3}  # the short last chunk


def test_the_release_refuses_a_campaign_that_is_not_running() -> None:
    store = _store(Clock(NOW), state="paused")
    assert not _release(store, 0)
    assert store.client.llen(KEYS.queue("bulk")) == 0 and store.counts("c1") == {}


def test_a_redelivered_chunk_is_claimed_job_by_job_and_an_expired_record_is_not_remade() -> None:
    store = _store(Clock(NOW))
    assert _release(store, 0)
    assert [c.status for c in _claim(store, 0)] == ["ok", "done"]
    # The same delivery after a lost answer gets its leases back; another finds them busy.
    assert [c.status for c in _claim(store, 0)] == ["ok", "done"]
    assert [c.status for c in _claim(store, 0, delivery="other")] == ["busy", "done"]
    store.client.delete(KEYS.job("c1-0"), KEYS.job("c1-1"))  # their TTL ran out
    assert [c.status for c in _claim(store, 0, delivery="late")] == ["missing", "missing"]
    assert store.client.keys(KEYS.job("*")) == []
    assert store.counts("c1") == {"sending": 1, "cancelled": 1}


def test_a_paused_campaign_makes_nothing_until_it_runs_again() -> None:
    store = _store(Clock(NOW))
    assert _release(store, 0)
    assert store.transition("c1", S.PAUSED, allowed_from={S.RUNNING}).status == "ok"
    assert [(c.status, c.detail) for c in _claim(store, 0)] == [("paused", "paused")] * 2
    assert store.client.keys(KEYS.job("*")) == [] and store.chunks_made("c1") == b""
    assert store.transition("c1", S.RUNNING, allowed_from={S.PAUSED}).status == "ok"
    assert [c.status for c in _claim(store, 0)] == ["ok", "done"]
    assert store.chunks_made("c1") == b"\x80"


def test_a_cancelled_campaign_makes_its_records_cancelled_once() -> None:
    store = _store(Clock(NOW))
    assert _release(store, 0)
    assert store.transition("c1", S.CANCELLED, allowed_from={S.RUNNING}).status == "ok"
    assert [(c.status, c.detail) for c in _claim(store, 0)] == [("done", "cancelled")] * 2
    assert store.client.hget(KEYS.job("c1-0"), "outcome") == b"cancelled"
    assert store.client.hget(KEYS.job("c1-1"), "outcome") == b"opted_out"
    assert store.counts("c1") == {"cancelled": 2}
    assert [c.status for c in _claim(store, 0, delivery="again")] == ["done", "done"]
    assert store.counts("c1") == {"cancelled": 2}


def test_cancelling_a_chunk_parked_before_its_claim_makes_its_records_cancelled() -> None:
    store = _store(Clock(NOW))
    assert _release(store, 0)
    assert store.transition("c1", S.PAUSED, allowed_from={S.RUNNING}).status == "ok"
    assert store.park("c1", "chunk:0", chunk_message("bulk", "c1", 0)) == "parked"
    assert store.transition("c1", S.CANCELLED, allowed_from={S.PAUSED}).status == "ok"
    records = [store.client.hgetall(KEYS.job(i)) for i in _ids(0)]
    assert [r[b"state"] for r in records] == [b"cancelled", b"cancelled"]
    assert [r[b"dst"].decode() for r in records] == [mask_phone(r[0]) for r in ROWS[:2]]
    assert records[0][b"queue"] == b"bulk" and records[0][b"idempotency_key"] == b"campaign:c1:0"
    assert 0 < store.client.ttl(KEYS.job("c1-0")) <= 600
    assert store.counts("c1") == {"cancelled": 2} and store.chunks_made("c1") == b"\x80"
    # A stray copy of the chunk's message changes nothing.
    assert [c.status for c in _claim(store, 0)] == ["done", "done"]
    assert store.counts("c1") == {"cancelled": 2}


def test_a_chunk_released_by_the_older_code_is_claimed_job_by_job() -> None:
    store = _store(Clock(NOW))
    _generic(store, 0)  # records made at release and already claimed by "w"
    assert store.chunks_made("c1") == b""
    assert [c.status for c in _claim(store, 0)] == ["ok", "done"]  # same token: its lease
    assert store.counts("c1") == {"sending": 1, "cancelled": 1}
    assert store.chunks_made("c1") == b"\x80"


def test_readers_show_a_pending_recipient_until_its_record_is_made() -> None:
    store = _store(Clock(NOW))
    assert _release(store, 0)
    pending = placeholder(store, "c1-0", queue="bulk")
    assert pending is not None and pending.state.value == "queued"
    assert pending.dst == "569*****000" and pending.campaign == "c1" and pending.segments == 1
    assert placeholder(store, "c1-2", queue="bulk") is None  # chunk 1 not released
    assert placeholder(store, "nope", queue="bulk") is None
    out = io.StringIO()
    control = CampaignControl(store)
    control.write_report("c1", out)
    assert [line.split(",")[2] for line in out.getvalue().splitlines()[1:]] == [
        "queued", "queued", "pending"
    ]  # fmt: skip
    _claim(store, 0)
    assert placeholder(store, "c1-0", queue="bulk") is None  # its record is the truth now
    store.client.delete(KEYS.job("c1-0"))
    out = io.StringIO()
    control.write_report("c1", out)
    assert [line.split(",")[2] for line in out.getvalue().splitlines()[1:]] == [
        "expired", "cancelled", "pending"
    ]  # fmt: skip


def test_get_status_and_cancel_of_a_pending_recipient() -> None:
    store = _store(Clock(NOW))
    assert _release(store, 0)
    producer = Producer(load_settings({"KEY_PREFIX": "t"}), redis_client=store.client)
    assert producer.get_status("c1-1").state.value == "queued"
    # It goes with its chunk: refused, and the chunk's claim still makes and sends it.
    assert producer.cancel("c1-0") == "refused:queued"
    assert [c.status for c in _claim(store, 0)] == ["ok", "done"]
    assert producer.get_status("c1-0").state.value == "sending"
    assert producer.cancel("c1-0") == "refused:sending"
    with pytest.raises(JobNotFound):
        producer.get_status("c1-2")  # not released yet
    assert producer.cancel("c1-2") == "missing"


@pytest.mark.parametrize(
    "number",
    ["56987654321", "+56987654321", "+56 9 8765 4321", "1234567", "12345678", "123456789",
     "5698765432100", "", "  +569-8765-4321"],
)  # fmt: skip
def test_the_lua_phone_mask_is_mask_phone(number: str) -> None:
    client = fakeredis.FakeRedis()
    lua = client.register_script(
        load("connectus_worker.campaign", "lib_mask_phone.lua") + "return mask_phone(ARGV[1])"
    )
    assert lua(args=[number]).decode() == mask_phone(number)
