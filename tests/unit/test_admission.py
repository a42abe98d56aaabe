"""The send path's admission: a token and the claim in one round trip (fakeredis with Lua,
manual clock)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import fakeredis
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind, State
from connectus_worker.producers.api import Producer
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.ratelimit import Bucket, Limits, RateLimiter
from tests.support.clock import Clock
from tests.support.pipeline import take_job


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


def _limiter(producer: Producer, clock: Clock, *, rate: float, burst: int,
             sleep: Any = None, **extra: Any) -> Any:  # fmt: skip
    buckets = {p: Bucket(rate, burst) for p in ("sms", "otp", "email", "whatsapp")}
    limits = Limits(buckets=buckets, min_rate_per_s=1.0, **extra)
    slept: list[float] = []
    limiter = RateLimiter(producer.redis, limits, prefix="t", account="acct", clock=clock,
                          sleep=sleep or slept.append)  # fmt: skip
    return limiter, slept


def test_no_token_within_the_timeout_takes_and_claims_nothing(
    producer: Producer, clock: Clock
) -> None:
    limiter, _ = _limiter(producer, clock, rate=1.0, burst=1)
    sent: list[str] = []
    pipeline = _pipeline(producer, limiter, clock, sent, acquire_timeout_s=0.5)
    producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654322", "dos")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "deferred:RateLimitTimeout"
    assert producer.get_status(second).state is State.QUEUED
    assert producer.get_status(second).attempts == 0
    assert float(limiter.status("sms")["tokens"]) == 0.0
    assert sent == ["56987654321"]


def test_a_capped_destination_takes_and_claims_nothing(producer: Producer, clock: Clock) -> None:
    limiter, _ = _limiter(producer, clock, rate=100.0, burst=100, dst_cap_count=1)
    sent: list[str] = []
    pipeline = _pipeline(producer, limiter, clock, sent)
    producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654321", "dos")
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "deferred:DestinationCapped"
    assert producer.get_status(second).state is State.QUEUED
    assert float(limiter.status("sms")["tokens"]) == 99.0
    assert sent == ["56987654321"]


def _pipeline(producer: Producer, limiter: RateLimiter, clock: Clock, sent: list[str],
              acquire_timeout_s: float = 5.0) -> Any:  # fmt: skip
    def send(kind: Kind, payload: Mapping[str, Any]) -> str:
        sent.append(str(payload["dst_number"]))
        return f"p{len(sent)}"

    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip
    return SendPipeline(content_key=b"k" * 32, store=producer.store, send=send, policy=policy,
                        worker_id="w", lease_ms=60_000, clock=clock, rng=random.Random(1),
                        limiter=limiter, acquire_timeout_s=acquire_timeout_s)  # fmt: skip


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
    slept: list[tuple[float, State]] = []
    first = producer.send_sms("56987654321", "uno")
    second = producer.send_sms("56987654322", "dos")

    def sleep(seconds: float) -> None:  # the token is reserved: nothing is claimed yet
        slept.append((seconds, producer.get_status(second).state))

    limiter, _ = _limiter(producer, clock, rate=10.0, burst=1, sleep=sleep)
    sent: list[str] = []
    pipeline = _pipeline(producer, limiter, clock, sent)
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "sent"
    assert [(round(seconds, 3), state) for seconds, state in slept] == [(0.1, State.QUEUED)]
    assert [producer.get_status(j).state for j in (first, second)] == [State.SENT, State.SENT]
    assert producer.get_status(second).attempts == 1
