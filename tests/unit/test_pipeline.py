"""The send pipeline: each error class leads to its one outcome (fakeredis, StubBroker)."""

from __future__ import annotations

import random

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from structlog.testing import capture_logs

from connectus_worker.domain.models import Kind, State
from connectus_worker.producers.api import Producer
from connectus_worker.worker.actors import register_actors
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from tests.support.clock import Clock
from tests.support.pipeline import FakeSender, guarded, take_job


def _pipeline(
    producer: Producer, sender: FakeSender, clock: Clock, max_retries: int = 3
) -> SendPipeline:
    policy = RetryPolicy(max_retries=max_retries, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip
    return SendPipeline(content_key=b"k" * 32, store=producer.store, send=sender, policy=policy, worker_id="w",
                        lease_ms=60_000, clock=clock, rng=random.Random(1))  # fmt: skip


def test_success_records_sent_with_provider_id(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    sender = FakeSender("prov-1")
    assert _pipeline(producer, sender, clock).handle(Kind.SMS, take_job(producer)) == "sent"
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id, record.attempts) == (State.SENT, "prov-1", 1)
    assert sender.calls == [(Kind.SMS, {"dst_number": "56987654321", "sms_content": "hola"})]


def test_a_redelivered_message_of_a_sent_job_is_not_sent_again(
    producer: Producer, clock: Clock
) -> None:
    producer.send_sms("56987654321", "hola")
    job = take_job(producer)
    sender = FakeSender("prov-1")
    pipeline = _pipeline(producer, sender, clock)
    pipeline.handle(Kind.SMS, job)
    assert pipeline.handle(Kind.SMS, job) == "skipped:done"
    assert len(sender.calls) == 1


AMBIGUOUS = [
    e.ResponseTimeout("t", reason="read_timeout"),
    e.ConnectionDropped("d", reason="dropped"),
    e.AmbiguousServerError("s", reason="http_500", status_code=500),
]


@pytest.mark.parametrize("error", AMBIGUOUS)
def test_ambiguous_outcome_is_unknown_and_not_resent(
    producer: Producer, clock: Clock, error: Exception
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    job = take_job(producer)
    sender = FakeSender(error)
    pipeline = _pipeline(producer, sender, clock)
    assert pipeline.handle(Kind.SMS, job) == "unknown"
    assert producer.get_status(job_id).state is State.UNKNOWN
    assert pipeline.handle(Kind.SMS, job) == "skipped:unknown"
    assert len(sender.calls) == 1


def test_permanent_failure_is_dead_lettered_with_reason(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    error = e.InvalidNumber("ESME_RINVDSTADR: invalid destination", reason="ESME_RINVDSTADR")
    assert (
        _pipeline(producer, FakeSender(error), clock).handle(Kind.SMS, take_job(producer))
        == "failed"
    )
    record = producer.get_status(job_id)
    assert (record.state, record.error_class) == (State.FAILED, "InvalidNumber")
    assert "invalid destination" in (record.last_error or "")
    assert producer.redis.zscore(producer.store.keys.dead_letters, job_id) is not None


def test_transient_failure_is_retried_durably_then_dead_lettered(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    sender = FakeSender(busy, busy, "prov-9")
    pipeline = _pipeline(producer, sender, clock, max_retries=5)
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    record = producer.get_status(job_id)
    assert record.state is State.RETRYING and record.next_attempt_at is not None
    clock.now_ms = int(record.next_attempt_at.timestamp() * 1000)
    assert producer.store.promote_due() == 1
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    clock.now_ms += 10_000
    producer.store.promote_due()
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert producer.get_status(job_id).attempts == 3


def test_retries_are_bounded(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    busy = e.Throttled("throttled", reason="ESME_RTHROTTLED")
    pipeline = _pipeline(producer, FakeSender(busy, busy), clock, max_retries=1)
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    clock.now_ms += 60_000
    producer.store.promote_due()
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "failed"
    assert "retries exhausted after 2 attempts" in (producer.get_status(job_id).last_error or "")


@pytest.mark.parametrize(
    "status", ["ESME_RSUBMITFAIL", "ESME_RDELIVERYFAILURE", "ESME_RUNKNOWNERR"]
)
def test_a_refusal_that_is_only_often_temporary_gets_a_few_retries(
    producer: Producer, clock: Clock, status: str
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    refused = e.SubmitRefused("refused", reason=status)
    pipeline = _pipeline(producer, FakeSender(*[refused] * 5), clock, max_retries=20)
    answers = []
    for _ in range(4):
        answers.append(pipeline.handle(Kind.SMS, take_job(producer)))
        clock.now_ms += 600_000
        producer.store.promote_due()
    assert answers == ["retrying", "retrying", "retrying", "failed"]
    record = producer.get_status(job_id)
    assert record.error_class == "SubmitRefused"
    assert "retries exhausted after 4 attempts" in (record.last_error or "")


def test_retry_after_is_honoured_for_the_durable_delay(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    limited = e.RateLimited("429", reason="http_429", status_code=429, retry_after_s=120)
    _pipeline(producer, FakeSender(limited), clock).handle(Kind.SMS, take_job(producer))
    record = producer.get_status(job_id)
    assert record.next_attempt_at.timestamp() * 1000 - clock.now_ms >= 120_000


def test_account_error_pauses_without_dead_lettering(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    error = e.AuthenticationFailed("401", reason="http_401", status_code=401)
    _pipeline(producer, FakeSender(error), clock, max_retries=0).handle(
        Kind.SMS, take_job(producer)
    )
    assert producer.get_status(job_id).state is State.RETRYING
    assert producer.redis.zcard(producer.store.keys.dead_letters) == 0


def test_dead_lettered_otp_keeps_no_content(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_otp("56987654321", "Tu codigo es 424242")
    error = e.Rejected("rejected", reason="ESME_RX_P_APPN")
    _pipeline(producer, FakeSender(error), clock).handle(Kind.OTP, take_job(producer, "otp"))
    stored = producer.redis.hget(producer.store.keys.dead_letter_messages, job_id)
    assert b"424242" not in stored
    assert b"424242" not in b"".join(
        v for v in producer.redis.hgetall(producer.store.keys.job(job_id)).values()
    )


def test_too_old_message_is_dead_lettered_not_sent(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    clock.now_ms += 3_601_000
    sender = FakeSender("never")
    assert _pipeline(producer, sender, clock).handle(Kind.SMS, take_job(producer)) == "failed"
    assert producer.get_status(job_id).error_class == "Expired" and sender.calls == []


def test_actors_on_a_stub_broker_route_each_kind_to_the_pipeline(
    producer: Producer, clock: Clock
) -> None:
    broker = StubBroker()
    broker.emit_after("process_boot")
    sender = FakeSender("p1", "p2")
    actors = register_actors(broker, _pipeline(producer, sender, clock), producer.settings)
    assert {a.queue_name for a in actors.values()} == {"otp", "transactional"}
    sms_id = producer.send_sms("56987654321", "hola")
    otp_id = producer.send_otp("56987654321", "codigo 1")
    actors[Kind.SMS].send(job=take_job(producer))
    actors[Kind.OTP].send(job=take_job(producer, "otp"))
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        broker.join("transactional")
        broker.join("otp")
        worker.join()
    finally:
        worker.stop()
    assert {kind for kind, _ in sender.calls} == {Kind.SMS, Kind.OTP}
    assert producer.get_status(sms_id).state is State.SENT
    assert producer.get_status(otp_id).state is State.SENT


def test_a_message_finding_a_live_lease_comes_back_after_it(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    job = take_job(producer)
    producer.store.claim(job_id, worker_id="dead-worker", lease_ms=60_000)  # then it was SIGKILLed
    sender = FakeSender()
    pipeline = _pipeline(producer, sender, clock)
    assert pipeline.handle(Kind.SMS, job) == "skipped:busy"
    assert producer.store.promote_due() == 0
    clock.now_ms += 61_000
    assert producer.store.promote_due() == 1
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "skipped:expired"
    record = producer.get_status(job_id)
    assert record.state is State.UNKNOWN and sender.calls == []
    assert producer.redis.zscore(producer.store.keys.unknown, job_id) is not None
    assert producer.store.held_message(job_id) is not None


def test_an_open_breaker_defers_without_spending_an_attempt(
    producer: Producer, clock: Clock
) -> None:
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    sender = FakeSender(busy, busy)
    pipeline, breaker, _ = guarded(producer, sender, clock)
    first = producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654321", "dos")
    third = producer.send_sms("56987654321", "tres")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    assert breaker.status()["state"] == "open"
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "deferred:breaker_open"
    record = producer.get_status(third)
    assert (record.state, record.attempts) == (State.QUEUED, 0)
    assert len(sender.calls) == 2
    assert producer.redis.zscore(producer.store.keys.schedule, third) is not None
    assert {producer.get_status(j).state for j in (first, second)} == {State.RETRYING}
    assert producer.redis.zcard(producer.store.keys.dead_letters) == 0


def test_an_exhausted_balance_pauses_that_country_only(producer: Producer, clock: Clock) -> None:
    sender = FakeSender(e.BalanceExhausted("no balance", reason="http_402", status_code=402),
                        "mx-1", "mail-1", "wa-1")  # fmt: skip
    pipeline, breaker, _ = guarded(producer, sender, clock)
    producer.send_sms("56987654321", "uno")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    [scope] = breaker.status()["scopes"]
    assert (scope["scope"], scope["state"]) == ("balance:sms:CL", "open")
    assert scope["reason"] == "BalanceExhausted: http_402"
    chile = producer.send_sms("56987654322", "dos")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "deferred:breaker_open"
    assert (producer.get_status(chile).state, producer.get_status(chile).attempts) == (
        State.QUEUED, 0)  # fmt: skip
    producer.send_otp("56987654323", "Tu código es 1234")
    assert pipeline.handle(Kind.OTP, take_job(producer, "otp")) == "deferred:breaker_open"
    producer.send_sms("+52 55 1234 5678", "hola México")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    producer.send_email("ana@example.com", "Hola", "<p>hola</p>", src_email="a@empresa.cl")
    assert pipeline.handle(Kind.EMAIL, take_job(producer)) == "sent"
    producer.send_whatsapp("56987654324", "Hola", src_number="56999944837")
    assert pipeline.handle(Kind.WHATSAPP, take_job(producer)) == "sent"
    assert [kind for kind, _ in sender.calls] == [Kind.SMS, Kind.SMS, Kind.EMAIL, Kind.WHATSAPP]


def test_a_prohibited_product_pauses_sms_not_email(producer: Producer, clock: Clock) -> None:
    sender = FakeSender(e.ProductDenied("no", reason="ESME_RPROHIBITED"), "mail-1")
    pipeline, breaker, _ = guarded(producer, sender, clock)
    producer.send_sms("56987654321", "uno")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    producer.send_sms("525512345678", "dos")  # another country: the product is paused
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "deferred:breaker_open"
    producer.send_email("ana@example.com", "Hola", "<p>hola</p>", src_email="a@empresa.cl")
    assert pipeline.handle(Kind.EMAIL, take_job(producer)) == "sent"
    assert [s["scope"] for s in breaker.status()["scopes"]] == ["product:sms"]
    assert producer.redis.zcard(producer.store.keys.dead_letters) == 0


def test_a_bad_key_pauses_every_kind(producer: Producer, clock: Clock) -> None:
    sender = FakeSender(e.AuthenticationFailed("bad key", reason="http_401", status_code=401))
    pipeline, breaker, _ = guarded(producer, sender, clock)
    producer.send_sms("56987654321", "uno")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    producer.send_email("ana@example.com", "Hola", "<p>hola</p>", src_email="a@empresa.cl")
    assert pipeline.handle(Kind.EMAIL, take_job(producer)) == "deferred:breaker_open"
    assert [s["scope"] for s in breaker.status()["scopes"]] == ["account"]


def test_no_token_defers_and_a_429_lowers_the_shared_rate(producer: Producer, clock: Clock) -> None:
    limited = e.RateLimited("429", reason="http_429", status_code=429, retry_after_s=2)
    # One throttle of one request is the provider's limit when one is enough.
    pipeline, _, limiter = guarded(producer, FakeSender(limited), clock, rate=10.0, burst=1,
                                    min_throttles=1)  # fmt: skip
    # The bucket in use for 2 s: a measurement old enough (half a window) to judge by.
    limiter.acquire("sms", timeout_s=0)
    clock.now_ms += 2000
    first = producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654321", "dos")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    assert float(limiter.status("sms")["rate_per_s"]) < 10.0
    with capture_logs() as logs:
        assert pipeline.handle(Kind.SMS, take_job(producer)) == "deferred:RateLimitTimeout"
    # Counted by the actor's metrics (connectus_worker_deferrals_total), not an INFO line.
    deferred = [entry for entry in logs if entry["event"] == "send.deferred"]
    assert [entry["log_level"] for entry in deferred] == ["debug"]
    assert producer.get_status(second).attempts == 0
    assert producer.get_status(first).state is State.RETRYING


def test_a_half_open_breaker_holds_others_back_only_briefly(
    producer: Producer, clock: Clock
) -> None:
    from connectus_worker.worker.breaker_scopes import target_for
    from connectus_worker.worker.pipeline import HALF_OPEN_RECHECK_MS

    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    pipeline, breaker, _ = guarded(producer, FakeSender(busy, busy), clock)
    for i in range(2):
        producer.send_sms("56987654321", f"falla {i}")
        pipeline.handle(Kind.SMS, take_job(producer))
    clock.now_ms += 30_000  # the open period is over: the next allow() takes the probe
    assert breaker.allow(target_for(Kind.SMS, {"dst_number": "56987654321"})).probe is not None
    waiting = producer.send_sms("56987654321", "espera")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "deferred:breaker_half_open"
    due = producer.redis.zscore(producer.store.keys.schedule, waiting)
    assert due is not None and due - clock.now_ms <= HALF_OPEN_RECHECK_MS
