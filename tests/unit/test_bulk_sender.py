# ruff: noqa: F401, F811 (the fixtures of tests/support/bulk.py are imported and used by name)
"""worker.bulk.BulkSender on fakeredis, with a Connectus client on httpx.MockTransport.

A v1_bulk campaign of five recipients is released by the real pump (job records
and one chunk message), then ``handle`` sends the chunk; every outcome is read
back from the ledger: job records, the schedule, dead letters, unknown jobs.
"""

from __future__ import annotations

import json
import random
from typing import Any

import dramatiq
import fakeredis
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker

from connectus_worker.campaign.model import CampaignState
from connectus_worker.campaign.pending import placeholder
from connectus_worker.campaign.store import CampaignStore, job_id_for
from connectus_worker.config import load_settings
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.jobs_batch import BatchLedger, BulkChunk
from connectus_worker.ledger.keys import Keys
from connectus_worker.logging.redaction import mask_phone
from connectus_worker.worker.actors import register_bulk_actor
from connectus_worker.worker.bulk import BulkSender
from connectus_worker.worker.campaign_messages import (
    BULK_ACTOR,
    RECORDS_AT_CLAIM,
    ChunkRecovery,
    chunk_message,
    refused_chunk,
)
from connectus_worker.worker.campaigns import CampaignPump
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.ledger import quarantine
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.ratelimit import Bucket, Limits, RateLimiter, RateLimitTimeout
from tests.support.bulk import (
    CID,
    DSTS,
    KEYS,
    NOW,
    all_sent,
    bulk_answer,
    bulk_sender,
    campaigns,
    client,
    clock,
    jobs,
    queued,
    released,
)
from tests.support.clock import Clock
from tests.support.connectus import Recorder, make_client

IDS = [job_id_for(CID, i) for i in range(5)]
S = CampaignState


def _sent_numbers(recorder: Recorder) -> list[list[str]]:
    """The dst_number of every message of every bulk call the mock saw (in the query
    string, as the v1 document sends them; a JSON number each)."""
    calls = []
    for request in recorder.requests:
        assert request.url.path == "/api_v1/send_sms_bulk" and request.content == b""
        query = dict(request.url.params)
        calls.append([str(m["dst_number"]) for m in json.loads(query["messages"])])
    return calls


def _state(jobs: JobStore, job_id: str) -> str:
    """The job's state as get_status shows it: its record, or before the chunk's
    first claim made one, the placeholder of a pending bulk recipient."""
    campaigns = CampaignStore(jobs.client, KEYS, ttl_s=3600, job_ttl_s=600)
    record = jobs.get(job_id) or placeholder(campaigns, job_id, queue="bulk")
    assert record is not None
    return record.state.value


def _made_by_an_earlier_claim(jobs: JobStore, *, worker: str, lease_ms: int = 60_000) -> list[int]:
    """The chunk's records, made and leased by another delivery of its message; fences."""
    chunk = BulkChunk(CID, 0, 0, "sms", "bulk", 3600)
    rows = [(dst, mask_phone(dst), 1) for dst in DSTS]
    claims = BatchLedger(jobs).claim_bulk(chunk, rows, worker_id=worker, lease_ms=lease_ms,
                                          token=worker)  # fmt: skip
    assert [c.status for c in claims] == ["ok"] * 5
    return [c.fence for c in claims]


def _scheduled(client: fakeredis.FakeRedis) -> dict[str, tuple[int, dict[str, Any]]]:
    """Schedule member -> (due ms, its message)."""
    return {
        member.decode(): (int(score), json.loads(client.hget(KEYS.schedule_messages, member)))
        for member, score in client.zrange(KEYS.schedule, 0, -1, withscores=True)
    }


def _dead(client: fakeredis.FakeRedis) -> dict[str, dict[str, Any]]:
    return {
        member.decode(): json.loads(client.hget(KEYS.dead_letter_messages, member))
        for member in client.zrange(KEYS.dead_letters, 0, -1)
    }


def test_a_chunk_is_sent_in_one_call_and_every_recipient_recorded(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
    assert sender.handle(released, 0) == "sent:5"
    assert _sent_numbers(recorder) == [DSTS]
    form = dict(recorder.last.url.params)
    assert form["delivery_name"] == "promo #0"
    assert [m["sms_content"] for m in json.loads(form["messages"])] == [
        f"Hola n{i}" for i in range(5)
    ]
    for i, job_id in enumerate(IDS):
        record = jobs.get(job_id)
        assert record is not None and record.state.value == "sent"
        assert record.provider_id == f"sms-{i}" and record.attempts == 1
        assert jobs.job_for_provider_id(f"sms-{i}") == job_id  # webhooks find the job
    assert campaigns.deliveries(released) == {0: "dlv-1"}
    assert campaigns.counts(released) == {"sent": 5}
    assert _dead(client) == {} and _scheduled(client) == {}
    assert client.zcard(KEYS.leases) == 0


def test_a_chunk_too_long_for_one_query_string_goes_as_several_calls(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    sender, recorder = bulk_sender(campaigns, jobs, clock, *_split_answers())
    sender.client.v1.max_query_bytes = 260  # two of these messages a call
    assert sender.handle(released, 0) == "sent:5"
    assert _sent_numbers(recorder) == [DSTS[0:2], DSTS[2:4], DSTS[4:]]
    assert all(len(r.url.query) <= 260 for r in recorder.requests)
    assert [jobs.get(j).provider_id for j in IDS] == [f"sms-{i}" for i in range(5)]  # type: ignore[union-attr]
    assert campaigns.deliveries(released) == {0: "dlv-0,dlv-1,dlv-2"}
    assert campaigns.counts(released) == {"sent": 5}


def _limiter(client: fakeredis.FakeRedis, clock: Clock, burst: int) -> RateLimiter:
    """An SMS bucket of ``burst`` tokens, one more a second; time moves only by hand."""
    limits = Limits(buckets={"sms": Bucket(1.0, burst)}, min_rate_per_s=1.0)
    return RateLimiter(client, limits, prefix="t", account="a", clock=clock, sleep=clock.sleep)


def _split_answers() -> list[httpx.Response]:
    return [bulk_answer([{"id_sms": f"sms-{i}"} for i in ids], f"dlv-{n}")
            for n, ids in enumerate(([0, 1], [2, 3], [4]))]  # fmt: skip


def test_each_call_of_a_split_chunk_takes_one_rate_token(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    limiter = _limiter(client, clock, burst=4)
    sender, recorder = bulk_sender(campaigns, jobs, clock, *_split_answers(), limiter=limiter)
    sender.client.v1.max_query_bytes = 260  # three calls
    assert sender.handle(released, 0) == "sent:5"
    assert len(recorder.requests) == 3
    limiter.acquire("sms", timeout_s=0)  # the fourth token is left...
    with pytest.raises(RateLimitTimeout):  # ...and no fifth
        limiter.acquire("sms", timeout_s=0)


def test_a_split_chunk_without_a_token_for_its_next_call_gives_the_rest_back(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    limiter = _limiter(client, clock, burst=2)
    sender, recorder = bulk_sender(campaigns, jobs, clock, *_split_answers(), limiter=limiter)
    sender.client.v1.max_query_bytes = 260
    assert sender.handle(released, 0) == "sent:4+deferred"
    assert len(recorder.requests) == 2  # the third call waits for its token
    assert [_state(jobs, j) for j in IDS] == ["sent"] * 4 + ["retrying"]
    due, _message = _scheduled(client)[f"chunk:{released}:0"]
    assert due == NOW + 1000  # when the bucket earns its next token (1 a second)
    assert client.zcard(KEYS.leases) == 0
    assert campaigns.deliveries(released) == {0: "dlv-0,dlv-1"}


def test_a_failed_call_of_a_split_chunk_gives_the_later_calls_back(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    answers = [bulk_answer([{"id_sms": "sms-0"}, {"id_sms": "sms-1"}]),
               httpx.Response(503, json={"error": "down"})]  # fmt: skip
    sender, recorder = bulk_sender(campaigns, jobs, clock, *answers)
    sender.client.v1.max_query_bytes = 260
    assert sender.handle(released, 0) == "sent:2+retrying"
    assert len(recorder.requests) == 2  # the third call was not made
    assert [_state(jobs, j) for j in IDS] == ["sent", "sent", "retrying", "retrying", "retrying"]
    assert set(_scheduled(client)) == {f"chunk:{released}:0"}  # the chunk comes back
    assert client.zcard(KEYS.leases) == 0


def test_an_item_with_neither_id_nor_error_is_unknown_not_dead_lettered(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    items = [{"id_sms": f"sms-{i}"} for i in range(5)]
    items[2] = {}
    sender, _ = bulk_sender(campaigns, jobs, clock, bulk_answer(items))
    assert sender.handle(released, 0) == "sent:4"
    assert [_state(jobs, j) for j in IDS] == ["sent", "sent", "unknown", "sent", "sent"]
    assert _dead(client) == {}
    assert client.zscore(KEYS.unknown, IDS[2]) is not None  # for the reconciler


def test_per_item_errors_are_classified_one_by_one(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    items = [
        {"id_sms": "sms-0"},
        {"error": "NUMERO_INVALIDO", "dst_number": DSTS[1]},
        {"error": "DESTINO_BLOQUEADO_POR_OPERADOR", "dst_number": DSTS[2]},  # not in the tables
        {"error": "Saldo insuficiente para el envio", "dst_number": DSTS[3]},
        {"id_sms": "sms-4"},
    ]
    sender, _ = bulk_sender(campaigns, jobs, clock, bulk_answer(items))
    assert sender.handle(released, 0) == "sent:2"
    assert [_state(jobs, j) for j in IDS] == ["sent", "failed", "failed", "retrying", "sent"]

    invalid, unlisted, balance = (jobs.get(IDS[i]) for i in (1, 2, 3))
    assert invalid is not None and invalid.error_class == "InvalidNumber"
    assert unlisted is not None and unlisted.error_class == "Rejected"
    assert "DESTINO_BLOQUEADO_POR_OPERADOR" in (unlisted.last_error or "")
    assert balance is not None and balance.error_class == "BalanceExhausted"

    # Dead letters: each a single v3 message of its own recipient, replayable alone.
    dead = _dead(client)
    assert set(dead) == {IDS[1], IDS[2]}
    single = dead[IDS[1]]
    assert single["actor_name"] == "send_sms" and single["queue_name"] == "bulk"
    assert single["kwargs"]["job"]["job_id"] == IDS[1]
    assert single["kwargs"]["job"]["key"] == f"campaign:{CID}:1"
    assert single["kwargs"]["job"]["payload"] == {"dst_number": DSTS[1], "sms_content": "Hola n1"}
    assert jobs.replay(IDS[1]) == "replayed"
    assert [m["kwargs"]["job"]["job_id"] for m in queued(client)] == [IDS[1]]
    assert _state(jobs, IDS[1]) == "queued"

    # The balance refusal: a durable retry of that recipient alone, as a v3 send.
    scheduled = _scheduled(client)
    assert set(scheduled) == {IDS[3]}
    due, message = scheduled[IDS[3]]
    assert due > NOW and balance.next_attempt_at is not None
    assert int(balance.next_attempt_at.timestamp() * 1000) == due
    assert message["actor_name"] == "send_sms"
    assert message["kwargs"]["job"]["payload"]["dst_number"] == DSTS[3]
    assert campaigns.counts(released) == {"sent": 2, "queued": 1, "failed": 1, "retrying": 1}


def test_a_transient_failure_of_the_whole_call_defers_the_chunk(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    sender, recorder = bulk_sender(campaigns, jobs, clock, httpx.Response(503, json={}))
    assert sender.handle(released, 0) == "retrying"
    assert len(recorder.requests) == 1
    assert [_state(jobs, j) for j in IDS] == ["retrying"] * 5
    record = jobs.get(IDS[0])
    assert record is not None and record.error_class == "ServiceUnavailable"
    assert _dead(client) == {} and client.zcard(KEYS.leases) == 0
    # Not five single messages: the chunk's own message, once, after a backoff.
    scheduled = _scheduled(client)
    assert list(scheduled) == [f"chunk:{CID}:0"]
    due, message = scheduled[f"chunk:{CID}:0"]
    assert due > NOW
    assert message["actor_name"] == BULK_ACTOR
    assert message["kwargs"] == {"chunk": {"campaign": CID, "chunk": 0}, **RECORDS_AT_CLAIM}
    assert campaigns.counts(released) == {"retrying": 5}


def test_a_throttled_call_comes_back_after_its_retry_after(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    # The one outcome policy: Retry-After (60 s) outlasts the backoff (1-8 s).
    answer = httpx.Response(429, json={}, headers={"Retry-After": "60"})
    sender, _ = bulk_sender(campaigns, jobs, clock, answer)
    assert sender.handle(released, 0) == "retrying"
    due, _message = _scheduled(client)[f"chunk:{CID}:0"]
    assert due == NOW + 60_000
    record = jobs.get(IDS[0])
    assert record is not None and record.error_class == "RateLimited"


def test_dead_letters_after_durable_max_retries(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    sender, recorder = bulk_sender(
        campaigns, jobs, clock, httpx.Response(503, json={}), max_retries=2
    )
    for attempt in (1, 2):
        assert sender.handle(released, 0) == "retrying"
        assert _dead(client) == {}
        # The housekeeper brings the chunk message back when it is due.
        clock.now_ms = _scheduled(client)[f"chunk:{CID}:0"][0]
        assert jobs.promote_due() == 1
        assert [m["kwargs"]["chunk"] for m in queued(client)] == [{"campaign": CID, "chunk": 0}]
        client.delete(KEYS.queue("bulk"), KEYS.queue_messages("bulk"))
        assert jobs.get(IDS[0]).attempts == attempt  # type: ignore[union-attr]
    assert sender.handle(released, 0) == "failed"  # the third attempt, over 2 retries
    assert len(recorder.requests) == 3
    assert [_state(jobs, j) for j in IDS] == ["failed"] * 5
    assert set(_dead(client)) == set(IDS)
    record = jobs.get(IDS[0])
    assert record is not None and "retries exhausted after 3 attempts" in (record.last_error or "")
    assert _scheduled(client) == {}  # nothing comes back any more


def test_a_timeout_after_sending_makes_every_claimed_recipient_unknown(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    sender, recorder = bulk_sender(
        campaigns, jobs, clock, lambda request: httpx.ReadTimeout("timed out", request=request)
    )
    assert sender.handle(released, 0) == "unknown"
    assert len(recorder.requests) == 1  # sent once: never resent blindly
    assert [_state(jobs, j) for j in IDS] == ["unknown"] * 5
    # Scored by when they became unknown: the reconciler waits before it looks them up.
    unknown = dict(client.zrange(KEYS.unknown, 0, -1, withscores=True))
    assert unknown == {j.encode(): float(NOW) for j in IDS}
    for i, job_id in enumerate(IDS):
        kept = jobs.held_message(job_id)
        assert kept is not None and kept.actor_name == "send_sms"
        assert kept.kwargs["job"]["payload"]["dst_number"] == DSTS[i]
    assert _dead(client) == {} and _scheduled(client) == {}
    assert campaigns.counts(released) == {"unknown": 5}


def test_a_redelivered_chunk_sends_only_the_recipients_not_sent_yet(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    # Recipients 0 and 1 were sent already, the others came back to retry (a bulk
    # whose chunk message came back).
    fences = _made_by_an_earlier_claim(jobs, worker="old")
    for i in (0, 1):
        assert jobs.finish(
            Finish(IDS[i], fences[i], "done", {"state": "sent", "provider_id": f"old-{i}"})
        )
    for i in (2, 3, 4):
        assert jobs.finish(Finish(IDS[i], fences[i], "done", {"state": "retrying"}))
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent(3, start=2))
    assert sender.handle(released, 0) == "sent:3"
    assert _sent_numbers(recorder) == [DSTS[2:]]
    assert [jobs.get(j).provider_id for j in IDS] == ["old-0", "old-1", "sms-2", "sms-3", "sms-4"]  # type: ignore[union-attr]
    # Once more: nothing left to send, no call at all.
    assert sender.handle(released, 0) == "skipped"
    assert len(recorder.requests) == 1


def test_a_recipient_leased_by_another_worker_is_left_to_it(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    # Another delivery of the chunk made and leased every record; it gave back all
    # but the last one (retrying) and still holds that one's lease.
    fences = _made_by_an_earlier_claim(jobs, worker="other", lease_ms=10_000)
    for i in range(4):
        assert jobs.finish(Finish(IDS[i], fences[i], "done", {"state": "retrying"}))
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent(4))
    assert sender.handle(released, 0) == "sent:4"
    assert _sent_numbers(recorder) == [DSTS[:4]]
    assert _state(jobs, IDS[4]) == "sending"
    # The chunk comes back after that lease, to find the job done or expired.
    due, _ = _scheduled(client)[f"chunk:{CID}:0"]
    assert due == NOW + 10_000 + 1000


def test_a_paused_campaign_parks_the_chunk_message(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    assert campaigns.transition(released, S.PAUSED, allowed_from={S.RUNNING}).status == "ok"
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
    assert sender.handle(released, 0) == "parked:parked"
    assert recorder.requests == []
    assert [_state(jobs, j) for j in IDS] == ["queued"] * 5
    assert campaigns.parked(released) == 1 and queued(client) == []
    # Resuming puts the chunk message back on its queue; then it sends.
    assert campaigns.transition(released, S.RUNNING, allowed_from={S.PAUSED}).status == "ok"
    assert [m["kwargs"]["chunk"] for m in queued(client)] == [{"campaign": CID, "chunk": 0}]
    assert sender.handle(released, 0) == "sent:5"


def test_a_cancelled_campaign_sends_nothing(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    assert campaigns.transition(released, S.CANCELLED, allowed_from={S.RUNNING}).status == "ok"
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
    assert sender.handle(released, 0) == "skipped"
    assert recorder.requests == []
    assert [_state(jobs, j) for j in IDS] == ["cancelled"] * 5


def test_a_missing_campaign_is_dropped(
    campaigns: CampaignStore, jobs: JobStore, clock: Clock
) -> None:
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
    assert sender.handle("gone", 0) == "missing"
    assert recorder.requests == []


@pytest.fixture
def actor(
    campaigns: CampaignStore, jobs: JobStore, clock: Clock
) -> tuple[dramatiq.Actor[..., Any], Recorder]:
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
    settings = load_settings({"KEY_PREFIX": "t"})
    broker = StubBroker()
    try:
        yield register_bulk_actor(broker, sender, settings), recorder  # type: ignore[misc]
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [((), {"job": {}}, "expected exactly one keyword argument, 'chunk'"),
     (("c1",), {"chunk": {"campaign": "c1", "chunk": 0}}, "expected exactly one keyword"),
     ((), {"chunk": {"campaign": "", "chunk": 0}}, "chunk.campaign: must be a non-empty string"),
     ((), {"chunk": {"campaign": "c1", "chunk": -1}}, "chunk.chunk: must be a non-negative"),
     ((), {"chunk": {"campaign": "c1", "chunk": "0"}}, "chunk.chunk: must be a non-negative"),
     ((), {"chunk": {"campaign": "c1", "chunk": True}}, "chunk.chunk: must be a non-negative"),
     ((), {"chunk": {"campaign": "c1", "chunk": 0, "x": 1}}, "chunk: expected 'campaign' and"),
     ((), {"chunk": {"campaign": "c1", "chunk": 0}, "records": "release"}, "and only {'records'"),
     ((), {"chunk": {"campaign": "c1", "chunk": 0}, "extra": 1}, "and only {'records': 'claim'}")],
)  # fmt: skip
def test_a_malformed_chunk_message_is_quarantined(
    released: str, actor: Any, client: Any, jobs: JobStore,
    args: tuple[Any, ...], kwargs: dict[str, Any], problem: str,
) -> None:  # fmt: skip
    bulk_actor, recorder = actor
    assert bulk_actor.actor_name == BULK_ACTOR and bulk_actor.queue_name == "bulk"
    bulk_actor(*args, **kwargs)
    assert recorder.requests == []
    members = [m.decode() for m in client.zrange(KEYS.dead_letters, 0, -1)]
    assert len(members) == 1 and members[0].startswith("malformed:")
    reason = client.hget(KEYS.dead_letter_reasons, members[0]).decode()
    assert reason.startswith("malformed job: ") and problem in reason
    kept = json.loads(client.hget(KEYS.dead_letter_messages, members[0]))
    assert kept["actor"] == BULK_ACTOR and kept["kwargs"] == kwargs
    assert [_state(jobs, j) for j in IDS] == ["queued"] * 5


@pytest.mark.parametrize("records", [{}, RECORDS_AT_CLAIM])  # an older pump's message, this one's
def test_the_actor_sends_a_well_formed_chunk(
    released: str, actor: Any, jobs: JobStore, records: dict[str, str]
) -> None:
    bulk_actor, recorder = actor
    bulk_actor(chunk={"campaign": released, "chunk": 0}, **records)
    assert _sent_numbers(recorder) == [DSTS]
    assert [_state(jobs, j) for j in IDS] == ["sent"] * 5


def _older_workers_quarantine(sender: BulkSender, message: dramatiq.Message[Any]) -> None:
    """What a worker older than records-at-claim does with this version's chunk
    message: its actor wants exactly one argument, and dead-letters the rest
    through the same quarantine."""
    assert set(message.kwargs) != {"chunk"}
    quarantine(sender.jobs, BULK_ACTOR, message.args, message.kwargs,
               "expected exactly one keyword argument, 'chunk'")  # fmt: skip


def test_a_chunk_dead_lettered_by_an_older_worker_is_put_back_once(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
    message = chunk_message("bulk", released, 0)
    _older_workers_quarantine(sender, message)
    # Dead letters that are not such a chunk stay where they are.
    quarantine(jobs, BULK_ACTOR, (), {"job": {}}, "expected exactly one keyword argument, 'chunk'")
    quarantine(jobs, BULK_ACTOR, (), {"chunk": {"campaign": released, "chunk": -1},
               **RECORDS_AT_CLAIM}, "chunk.chunk: must be a non-negative integer")  # fmt: skip
    jobs.quarantine(b"\xff not json", "undecodable")
    recovery = ChunkRecovery(client, KEYS, queue="bulk")
    assert recovery.run_once() == 1
    assert recovery.run_once() == 0
    assert client.zcard(KEYS.dead_letters) == 3 and client.hlen(KEYS.dead_letter_reasons) == 3
    (back,) = queued(client)
    assert back["actor_name"] == BULK_ACTOR and back["kwargs"] == message.kwargs
    assert sender.handle(released, 0) == "sent:5" and _sent_numbers(recorder) == [DSTS]


@pytest.mark.parametrize(
    "kept",
    [{"actor": "send_sms", "args": [], "kwargs": {"chunk": {"campaign": "c", "chunk": 0}, "records": "claim"}},
     {"actor": BULK_ACTOR, "args": [1], "kwargs": {"chunk": {"campaign": "c", "chunk": 0}, "records": "claim"}},
     {"actor": BULK_ACTOR, "args": [], "kwargs": {"chunk": {"campaign": "c", "chunk": 0}}},
     {"actor": BULK_ACTOR, "args": [], "kwargs": {"chunk": {"campaign": "c", "chunk": True}, "records": "claim"}},
     {"actor": BULK_ACTOR, "args": [], "kwargs": {"chunk": {"campaign": "c", "chunk": 0, "x": 1}, "records": "claim"}},
     {"actor": BULK_ACTOR, "args": [], "kwargs": {"chunk": {"campaign": "", "chunk": 0}, "records": "claim"}},
     {"actor": BULK_ACTOR, "args": [], "kwargs": {"chunk": [], "records": "claim"}},
     [BULK_ACTOR]],
)  # fmt: skip
def test_only_a_well_formed_chunk_with_records_at_claim_is_put_back(kept: Any) -> None:
    assert refused_chunk(json.dumps(kept)) is None
    good = {"actor": BULK_ACTOR, "args": [], "kwargs": {"chunk": {"campaign": "c", "chunk": 3},
                                                        "records": "claim"}}  # fmt: skip
    assert refused_chunk(json.dumps(good).encode()) == ("c", 3)
