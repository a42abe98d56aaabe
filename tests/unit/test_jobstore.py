"""The job ledger's transitions, on fakeredis (with Lua), with an injected clock."""

from __future__ import annotations

import json

import fakeredis
import pytest

from connectus_worker.domain.models import State
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import Finish, IdempotencyConflict, JobStore
from connectus_worker.ledger.keys import Keys
from tests.support.clock import Clock


@pytest.fixture
def store(clock: Clock) -> JobStore:
    return JobStore(fakeredis.FakeRedis(), Keys("t"), ttl_s=3600, clock=clock)


def _enqueue(store: JobStore, job_id: str, key: str, fp: str = "fp", due_ms: int | None = None):
    job = {"job_id": job_id, "kind": "sms", "key": key, "queue": "transactional", "payload": {}}
    message = new_message("transactional", "send_sms", job)
    record = {"job_id": job_id, "kind": "sms", "queue": "transactional", "idempotency_key": key,
              "dst": "569*****321", "attempts": 0, "fence": 0}  # fmt: skip
    return store.enqueue(
        job_id=job_id,
        idempotency_key=key,
        fingerprint=fp,
        message=message,
        record=record,
        due_ms=due_ms,
    ), message


def _queued_ids(store: JobStore) -> list[str]:
    ids = store.client.lrange(store.keys.queue("transactional"), 0, -1)
    data = [store.client.hget(store.keys.queue_messages("transactional"), i) for i in ids]
    return [json.loads(d)["kwargs"]["job"]["job_id"] for d in data]


def test_enqueue_writes_record_and_message_in_one_step(store: JobStore) -> None:
    result, _ = _enqueue(store, "j1", "k1")
    assert result == "j1"
    record = store.get("j1")
    assert record is not None and record.state is State.QUEUED
    assert _queued_ids(store) == ["j1"]
    assert store.client.ttl(store.keys.job("j1")) > 0


def test_same_key_twice_creates_one_job(store: JobStore) -> None:
    _enqueue(store, "j1", "k1")
    again, _ = _enqueue(store, "j2", "k1")
    assert again == "j1"  # the first job's id: no second job
    assert _queued_ids(store) == ["j1"]
    assert store.get("j2") is None


def test_same_key_different_payload_is_refused(store: JobStore) -> None:
    _enqueue(store, "j1", "k1", fp="a")
    with pytest.raises(IdempotencyConflict, match="idempotency_key: already used by job j1"):
        _enqueue(store, "j2", "k1", fp="b")
    assert _queued_ids(store) == ["j1"]


def test_future_delivery_is_scheduled_not_queued_until_due(store: JobStore, clock: Clock) -> None:
    _enqueue(store, "j1", "k1", due_ms=clock.now_ms + 60_000)
    assert store.get("j1").state is State.SCHEDULED
    assert store.promote_due() == 0 and _queued_ids(store) == []
    clock.now_ms += 60_000
    assert store.promote_due() == 1
    assert _queued_ids(store) == ["j1"]
    assert store.get("j1").state is State.QUEUED


def test_claim_takes_a_fenced_lease_and_a_second_claim_is_busy(
    store: JobStore, clock: Clock
) -> None:
    _enqueue(store, "j1", "k1")
    first = store.claim("j1", worker_id="w1", lease_ms=1000)
    assert (first.status, first.fence, first.attempts) == ("ok", 1, 1)
    assert store.get("j1").state is State.SENDING
    assert store.claim("j1", worker_id="w2", lease_ms=1000).status == "busy"


def test_expired_lease_becomes_unknown_never_a_resend(store: JobStore, clock: Clock) -> None:
    _enqueue(store, "j1", "k1")
    store.claim("j1", worker_id="w1", lease_ms=1000)
    clock.now_ms += 1001
    assert store.claim("j1", worker_id="w2", lease_ms=1000).status == "expired"
    record = store.get("j1")
    assert record.state is State.UNKNOWN and record.error_class == "LeaseExpired"
    assert store.claim("j1", worker_id="w3", lease_ms=1000).status == "unknown"


def test_finish_is_fenced_and_terminal_jobs_are_never_claimed_again(store: JobStore) -> None:
    _enqueue(store, "j1", "k1")
    claim = store.claim("j1", worker_id="w1", lease_ms=1000)
    assert not store.finish(Finish("j1", claim.fence + 1, "done", {"state": "sent"}))
    assert store.finish(Finish("j1", claim.fence, "done", {"state": "sent", "provider_id": "abc"}))
    assert store.get("j1").provider_id == "abc"
    assert store.job_for_provider_id("abc") == "j1"
    assert store.job_for_provider_id("other") is None
    again = store.claim("j1", worker_id="w2", lease_ms=1000)
    assert (again.status, again.detail) == ("done", "sent")


def test_a_retry_reschedules_with_a_new_broker_id(store: JobStore, clock: Clock) -> None:
    _, message = _enqueue(store, "j1", "k1")
    store.client.delete(store.keys.queue("transactional"))  # as if consumed and acked
    claim = store.claim("j1", worker_id="w1", lease_ms=1000)
    assert store.finish(
        Finish("j1", claim.fence, "retry", {"state": "retrying"}, message, clock.now_ms + 500)
    )
    assert store.get("j1").state is State.RETRYING
    clock.now_ms += 500
    assert store.promote_due() == 1
    new_id = store.client.lrange(store.keys.queue("transactional"), 0, -1)[0].decode()
    assert new_id != message.options["redis_message_id"]
    assert store.claim("j1", worker_id="w2", lease_ms=1000).attempts == 2


def test_dead_letter_then_replay_keeps_job_id(store: JobStore) -> None:
    _, message = _enqueue(store, "j1", "k1")
    store.client.delete(store.keys.queue("transactional"))
    claim = store.claim("j1", worker_id="w1", lease_ms=1000)
    fields = {"state": "failed", "error_class": "InvalidNumber", "last_error": "bad number"}
    assert store.finish(Finish("j1", claim.fence, "dead", fields, message))
    assert store.client.zscore(store.keys.dead_letters, "j1") is not None
    assert store.replay("j1") == "replayed"
    assert store.get("j1").state is State.QUEUED
    assert _queued_ids(store) == ["j1"]
    assert store.client.zscore(store.keys.dead_letters, "j1") is None
    assert store.replay("j1") == "missing"


def test_cancel_before_delivery_removes_the_schedule(store: JobStore, clock: Clock) -> None:
    _enqueue(store, "j1", "k1", due_ms=clock.now_ms + 1000)
    assert store.cancel("j1") == "cancelled"
    clock.now_ms += 1000
    assert store.promote_due() == 0
    assert store.claim("j1", worker_id="w", lease_ms=1000).status == "done"
    assert store.cancel("j1") == "refused:cancelled"
    assert store.cancel("nope") == "missing"
