"""Ledger writes wait out Redis outages, and a retried write that had landed counts as landed."""

from __future__ import annotations

import random

import fakeredis
import pytest
import redis

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind, State
from connectus_worker.ledger.jobs import Finish
from connectus_worker.producers.api import Producer
from connectus_worker.worker.ledger import DurableLedger
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from tests.support.clock import Clock
from tests.support.pipeline import FakeSender, take_job


class Flaky:
    """Raises ConnectionError ``failures`` times, then calls through (or not)."""

    def __init__(self, fn, failures: int, *, land_before_failing: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.fn, self.failures, self.land = fn, failures, land_before_failing
        self.calls = 0
        self.__name__ = "flaky"

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls <= self.failures:
            if self.land:  # the write lands, then the answer is lost
                self.fn(*args, **kwargs)
            raise redis.ConnectionError("Connection refused")
        return self.fn(*args, **kwargs)


@pytest.fixture
def producer() -> Producer:
    return Producer(load_settings({}), redis_client=fakeredis.FakeRedis(), clock=Clock())


def test_a_call_is_retried_until_redis_answers(producer: Producer) -> None:
    slept: list[float] = []
    ledger = DurableLedger(producer.store, sleep=slept.append, max_backoff_s=0.2)
    flaky = Flaky(lambda: "ok", failures=4)
    assert ledger.call(flaky) == "ok"
    assert flaky.calls == 5 and slept == [0.05, 0.1, 0.2, 0.2]


def test_a_claim_whose_answer_was_lost_recognises_itself(producer: Producer) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    ledger = DurableLedger(producer.store, sleep=lambda s: None)
    flaky = Flaky(producer.store.claim, failures=1, land_before_failing=True)
    claim = ledger.call(flaky, job_id, worker_id="w", lease_ms=60_000, token="delivery-1")
    assert (claim.status, claim.fence, claim.attempts) == ("ok", 1, 1)
    other = producer.store.claim(job_id, worker_id="w2", lease_ms=60_000, token="delivery-2")
    assert other.status == "busy"


def test_a_finish_that_landed_before_the_error_counts_as_landed(producer: Producer) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    claim = producer.store.claim(job_id, worker_id="w", lease_ms=60_000)
    ledger = DurableLedger(producer.store, sleep=lambda s: None)
    real_finish = producer.store.finish
    producer.store.finish = Flaky(real_finish, failures=1, land_before_failing=True)  # type: ignore[method-assign]
    assert ledger.finish(Finish(job_id, claim.fence, "done", {"state": "sent", "provider_id": "p"}))
    assert producer.get_status(job_id).state is State.SENT
    producer.store.finish = Flaky(real_finish, failures=0)  # type: ignore[method-assign]
    assert not ledger.finish(Finish(job_id, claim.fence + 1, "done", {"state": "sent"}))


def test_a_redis_outage_mid_send_does_not_lose_the_outcome(producer: Producer) -> None:
    """The pipeline's finish fails twice (Redis down), then lands: the job is sent."""
    job_id = producer.send_sms("56987654321", "hola")
    clock = Clock()
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=FakeSender("p-1"), worker_id="w", lease_ms=60_000,
                            clock=clock, rng=random.Random(1),
                            policy=RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                                               max_message_age_s=3600))  # fmt: skip
    pipeline.ledger = DurableLedger(producer.store, sleep=lambda s: None)
    real_finish = producer.store.finish
    producer.store.finish = Flaky(real_finish, failures=2)  # type: ignore[method-assign]
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert producer.get_status(job_id).provider_id == "p-1"


def test_a_lease_outliving_its_worker_is_swept_to_unknown_with_its_message(
    producer: Producer,
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    job = take_job(producer)
    from connectus_worker.ledger.job_messages import new_message

    message = new_message("transactional", "send_sms", job)
    producer.store.claim(job_id, worker_id="dead", lease_ms=1000, message=message)
    assert producer.store.sweep_expired_leases() == 0
    producer.store.clock.now_ms += 1000  # type: ignore[attr-defined]
    assert producer.store.sweep_expired_leases() == 1
    assert producer.get_status(job_id).state is State.UNKNOWN
    held = producer.store.held_message(job_id)
    assert held is not None and held.kwargs["job"]["payload"]["sms_content"] == "hola"
    assert producer.redis.zcard(producer.store.keys.leases) == 0


def test_a_retry_scheduled_during_a_redis_blip_is_not_lost(producer: Producer) -> None:
    """Dramatiq's Retries middleware swallows a failed re-enqueue and acks anyway;
    here the durable retry is a ledger write that waits the blip out."""
    from connectus_worker.worker.connectus import errors as e

    job_id = producer.send_sms("56987654321", "hola")
    clock = producer.store.clock
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=FakeSender(busy), worker_id="w", lease_ms=60_000,
                            clock=clock, rng=random.Random(1),  # type: ignore[arg-type]
                            policy=RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                                               max_message_age_s=3600))  # fmt: skip
    pipeline.ledger = DurableLedger(producer.store, sleep=lambda s: None)
    real = producer.store.finish
    producer.store.finish = Flaky(real, failures=3)  # type: ignore[method-assign]
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    assert producer.get_status(job_id).state is State.RETRYING
    assert producer.redis.zscore(producer.store.keys.schedule, job_id) is not None


def test_breaker_and_limiter_bookkeeping_errors_do_not_escape(producer: Producer) -> None:
    """After a successful send, a Redis error in the breaker's bookkeeping must not
    skip recording the outcome (Dramatiq would ack the message and the job would
    wait for the lease sweep)."""

    class DownBreaker:
        def allow(self, target):  # type: ignore[no-untyped-def]
            from connectus_worker.worker.breaker import Decision

            return Decision(True, 0, "closed", "")

        def record_success(self, decision=None):  # type: ignore[no-untyped-def]
            raise redis.ConnectionError("Connection refused")

    job_id = producer.send_sms("56987654321", "hola")
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=FakeSender("p-9"), worker_id="w", lease_ms=60_000,
                            clock=producer.store.clock, breaker=DownBreaker(),  # type: ignore[arg-type]
                            policy=RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                                               max_message_age_s=3600))  # fmt: skip
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert producer.get_status(job_id).provider_id == "p-9"
