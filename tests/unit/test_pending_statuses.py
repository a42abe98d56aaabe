"""A status webhook that comes before its send is recorded is kept, then applied (fakeredis)."""

from __future__ import annotations

from connectus_worker.domain.models import State
from connectus_worker.ledger.delivery_status import PendingStatuses
from connectus_worker.ledger.jobs import Finish
from connectus_worker.producers.api import Producer
from connectus_worker.service.events import EventRecorder
from tests.support.clock import Clock


def _recorder(producer: Producer) -> EventRecorder:
    return EventRecorder(
        producer.redis, producer.store.keys, seen_ttl_s=3600, maxlen=1000, hash_key=b"k"
    )


def _status(producer: Producer, id_sms: str, status: str, at: int) -> None:
    # As the webhook does: the provider index is looked up first; none yet.
    job_id = producer.store.job_for_provider_id(id_sms)
    _recorder(producer).sms_status(
        id_sms=id_sms, status=status, job_id=job_id, now_ms=at, request_id="r"
    )


def _sent(producer: Producer, clock: Clock, provider_id: str) -> str:
    """A job sent as a worker does: claimed, then finished with the provider id."""
    job_id = producer.send_sms("56987654321", "hola")
    claim = producer.store.claim(job_id, worker_id="w", lease_ms=60_000)
    fields = {"state": "sent", "provider_id": provider_id, "outcome": "sent",
              "sent_at": clock()}  # fmt: skip
    assert producer.store.finish(Finish(job_id, claim.fence, "done", fields))
    return job_id


def test_a_status_before_its_send_is_applied_once_the_send_is_recorded(
    producer: Producer, clock: Clock
) -> None:
    pending = PendingStatuses(producer.redis, producer.store.keys)
    _status(producer, "m-1", "ENVIADO_A_CARRIER", clock())
    _status(producer, "m-1", "ENTREGADO", clock() + 1)
    assert pending.match(clock() + 2) == (0, 0)  # no job for m-1 yet: it waits
    job_id = _sent(producer, clock, "m-1")
    assert pending.match(clock() + 3) == (1, 0)
    record = producer.get_status(job_id)
    assert record.state is State.SENT
    assert producer.redis.hget(producer.store.keys.job(job_id), "delivery_status") == b"ENTREGADO"
    assert producer.redis.hlen(producer.store.keys.status_pending) == 0
    assert producer.redis.zcard(producer.store.keys.status_pending_since) == 0


def test_a_lower_status_arriving_later_does_not_replace_a_final_one(
    producer: Producer, clock: Clock
) -> None:
    _status(producer, "m-2", "ENTREGADO", clock())
    _status(producer, "m-2", "EN_COLA", clock() + 5)
    kept = producer.redis.hget(producer.store.keys.status_pending, "m-2")
    assert kept == f"5|ENTREGADO|{clock()}".encode()
    # The first arrival dates the entry (for its expiry), not the last.
    assert producer.redis.zscore(producer.store.keys.status_pending_since, "m-2") == clock()


def test_a_pending_status_never_lowers_the_jobs_own(producer: Producer, clock: Clock) -> None:
    pending = PendingStatuses(producer.redis, producer.store.keys)
    _status(producer, "m-3", "EN_COLA", clock())
    job_id = _sent(producer, clock, "m-3")
    _status(producer, "m-3", "ENTREGADO", clock() + 1)  # matched directly now
    assert pending.match(clock() + 2) == (1, 0)
    assert producer.redis.hget(producer.store.keys.job(job_id), "delivery_status") == b"ENTREGADO"


def test_a_status_whose_send_never_appears_is_forgotten(producer: Producer, clock: Clock) -> None:
    pending = PendingStatuses(producer.redis, producer.store.keys, max_age_ms=60_000)
    _status(producer, "not-ours", "ENTREGADO", clock())
    assert pending.match(clock() + 59_000) == (0, 0)
    assert pending.match(clock() + 61_000) == (0, 1)
    assert producer.redis.hlen(producer.store.keys.status_pending) == 0
    assert producer.redis.zcard(producer.store.keys.status_pending_since) == 0


def test_a_matched_webhook_keeps_nothing_pending(producer: Producer, clock: Clock) -> None:
    job_id = _sent(producer, clock, "m-4")
    _status(producer, "m-4", "ENTREGADO", clock())
    assert producer.redis.hget(producer.store.keys.job(job_id), "delivery_status") == b"ENTREGADO"
    assert producer.redis.hlen(producer.store.keys.status_pending) == 0
