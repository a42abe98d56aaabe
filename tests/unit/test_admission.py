"""Admission: a token and the claim in one round trip (fakeredis with Lua, manual clock)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import fakeredis
import pytest

from config import load_settings
from core.models import Kind, State
from producers.api import Producer
from tests.support.clock import Clock
from tests.unit.pipeline_support import take_job
from worker.admission import Admission
from worker.outcomes import RetryPolicy
from worker.pipeline import SendPipeline
from worker.ratelimit import Bucket, DestinationCapped, Limits, RateLimiter, RateLimitTimeout


class CountingRedis(fakeredis.FakeRedis):
    """Counts the Lua script calls (EVALSHA/EVAL): each is one round trip."""

    scripts_run = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if str(args[0]).upper() in ("EVALSHA", "EVAL"):
            self.scripts_run += 1
        return super().execute_command(*args, **options)


@pytest.fixture
def producer(clock: Clock) -> Producer:
    return Producer(load_settings({}), redis_client=CountingRedis(), clock=clock)


def _limiter(producer: Producer, clock: Clock, *, rate: float, burst: int, **extra: Any) -> Any:
    buckets = {p: Bucket(rate, burst) for p in ("sms", "otp", "email", "whatsapp")}
    limits = Limits(buckets=buckets, min_rate_per_s=1.0, **extra)
    slept: list[float] = []
    limiter = RateLimiter(producer.redis, limits, prefix="t", account="acct", clock=clock,
                          sleep=slept.append)  # fmt: skip
    return limiter, slept


def _admit(admission: Admission, job_id: str, timeout_s: float = 5.0, dst: str | None = None):  # type: ignore[no-untyped-def]
    return admission.admit(job_id, product="sms", dst=dst, timeout_s=timeout_s, worker_id="w",
                           lease_ms=60_000, token="tok-1", message=None)  # fmt: skip


def test_a_free_token_claims_the_job_in_the_same_call(producer: Producer, clock: Clock) -> None:
    limiter, _ = _limiter(producer, clock, rate=10.0, burst=3)
    admission = Admission(producer.store, limiter)
    _admit(admission, producer.send_sms("56987654320", "the script's first load"))
    job_id = producer.send_sms("56987654321", "hola")
    before = producer.redis.scripts_run  # type: ignore[attr-defined]
    admitted = _admit(admission, job_id)
    assert producer.redis.scripts_run - before == 1  # type: ignore[attr-defined]
    assert admitted.claim is not None and admitted.claim.status == "ok"
    assert (admitted.claim.fence, admitted.claim.attempts) == (1, 1)
    assert admitted.token.waited_ms == 0
    assert producer.get_status(job_id).state is State.SENDING
    assert float(limiter.status("sms")["tokens"]) == 1.0


def test_a_token_reserved_for_later_claims_nothing(producer: Producer, clock: Clock) -> None:
    limiter, _ = _limiter(producer, clock, rate=10.0, burst=1)
    admission = Admission(producer.store, limiter)
    first = producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654322", "dos")
    assert _admit(admission, first).claim is not None
    admitted = _admit(admission, second)
    # The next token is earned in 100 ms at 10/s: reserved, not claimed yet.
    assert admitted.claim is None and admitted.token.waited_ms == pytest.approx(100.0)
    assert producer.get_status(second).state is State.QUEUED
    assert float(limiter.status("sms")["tokens"]) == -1.0


def test_no_token_within_the_timeout_takes_and_claims_nothing(
    producer: Producer, clock: Clock
) -> None:
    limiter, _ = _limiter(producer, clock, rate=1.0, burst=1)
    admission = Admission(producer.store, limiter)
    first = producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654322", "dos")
    _admit(admission, first)
    with pytest.raises(RateLimitTimeout) as refused:
        _admit(admission, second, timeout_s=0.5)
    assert refused.value.retry_in_ms == 1000
    assert producer.get_status(second).state is State.QUEUED
    assert float(limiter.status("sms")["tokens"]) == 0.0


def test_a_capped_destination_takes_and_claims_nothing(producer: Producer, clock: Clock) -> None:
    limiter, _ = _limiter(producer, clock, rate=100.0, burst=100, dst_cap_count=1)
    admission = Admission(producer.store, limiter)
    first = producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654321", "dos")
    _admit(admission, first, dst="56987654321")
    with pytest.raises(DestinationCapped):
        _admit(admission, second, dst="56987654321")
    assert producer.get_status(second).state is State.QUEUED
    assert float(limiter.status("sms")["tokens"]) == 99.0


def _pipeline(producer: Producer, limiter: RateLimiter, clock: Clock, sent: list[str]) -> Any:
    def send(kind: Kind, payload: Mapping[str, Any]) -> str:
        sent.append(str(payload["dst_number"]))
        return f"p{len(sent)}"

    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip
    return SendPipeline(store=producer.store, send=send, policy=policy, worker_id="w",
                        lease_ms=60_000, clock=clock, rng=random.Random(1), limiter=limiter)  # fmt: skip


def test_a_send_costs_two_round_trips_with_a_free_token(producer: Producer, clock: Clock) -> None:
    limiter, _ = _limiter(producer, clock, rate=10.0, burst=5)
    sent: list[str] = []
    pipeline = _pipeline(producer, limiter, clock, sent)
    producer.send_sms("56987654320", "the scripts' first load")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    job_id = producer.send_sms("56987654321", "hola")
    job = take_job(producer)
    before = producer.redis.scripts_run  # type: ignore[attr-defined]
    assert pipeline.handle(Kind.SMS, job) == "sent"
    # token + claim, then finish (the limiter and breaker were three and more).
    assert producer.redis.scripts_run - before == 2  # type: ignore[attr-defined]
    assert producer.get_status(job_id).state is State.SENT
    assert sent == ["56987654320", "56987654321"]


def test_a_reserved_token_is_slept_for_then_the_job_claimed(
    producer: Producer, clock: Clock
) -> None:
    limiter, slept = _limiter(producer, clock, rate=10.0, burst=1)
    sent: list[str] = []
    pipeline = _pipeline(producer, limiter, clock, sent)
    first = producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654322", "dos")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert slept == [pytest.approx(0.1)]
    assert [producer.get_status(j).state for j in (first, second)] == [State.SENT, State.SENT]
    assert producer.get_status(second).attempts == 1
