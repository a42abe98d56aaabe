"""Worker metrics: what the send path counts, and the Redis-backed collectors (fakeredis)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from prometheus_client import CollectorRegistry

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.breaker_scopes import target_for
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.connectus.errors import BalanceExhausted, ServiceUnavailable
from connectus_worker.worker.metrics import (
    BreakerCollector,
    QueueCollector,
    SupervisorCollector,
    WorkerMetrics,
    outcome_class,
    prepare_multiproc_dir,
    supervisor_registry,
)
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.senders import ClientSender
from tests.support.clock import Clock
from tests.support.pipeline import FakeSender, take_job


@pytest.mark.parametrize(
    ("result", "expected"),
    [("sent", ("sent", "")), ("unknown", ("unknown", "")), ("failed", ("failed", "")),
     ("retrying", ("retrying", "")), ("deferred:breaker_open", ("deferred", "breaker_open")),
     ("deferred:RateLimitTimeout", ("deferred", "RateLimitTimeout")),
     ("deferred:surprise", ("deferred", "other")), ("skipped:done", ("skipped", "")),
     ("fenced", ("skipped", "")), ("malformed:abc", ("failed", ""))],
)  # fmt: skip
def test_pipeline_answers_map_to_bounded_outcome_classes(
    result: str, expected: tuple[str, str]
) -> None:
    assert outcome_class(result) == expected


def _value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _pipeline(producer: Producer, sender: Any, metrics: WorkerMetrics) -> SendPipeline:
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip
    return SendPipeline(content_key=b"k" * 32, store=producer.store, send=sender, policy=policy, worker_id="w",
                        lease_ms=60_000, clock=Clock(), rng=random.Random(1), metrics=metrics)  # fmt: skip


def test_simulated_sends_are_counted_by_kind_and_outcome() -> None:
    producer = Producer(load_settings({}), redis_client=fakeredis.FakeRedis(), clock=Clock())
    metrics = WorkerMetrics()
    outcomes: list[Exception | str] = [
        "p-1", "p-2",
        e.Throttled("ESME_RTHROTTLED", reason="smpp_throttled"),
        e.ResponseTimeout("read timeout", reason="read_timeout"),
        e.InvalidNumber("bad", reason="invalid_number"),
    ]  # fmt: skip
    pipeline = _pipeline(producer, FakeSender(*outcomes), metrics)
    for i in range(len(outcomes)):
        producer.send_sms("56987654321", f"hola {i}")
        metrics.handled(Kind.SMS, pipeline.handle(Kind.SMS, take_job(producer)))
    metrics.handled(Kind.OTP, "deferred:breaker_open")

    def sends(kind: str, outcome: str) -> float:
        return _value(
            metrics, "connectus_worker_sends_total", kind=kind, outcome=outcome, account="default"
        )

    assert [sends("sms", o) for o in ("sent", "retrying", "unknown", "failed")] == [2, 1, 1, 1]
    assert sends("otp", "deferred") == 1 and sends("sms", "deferred") == 0
    assert _value(metrics, "connectus_worker_throttles_total", kind="sms", account="default") == 1
    assert _value(metrics, "connectus_worker_retries_total", kind="sms", layer="durable") == 1
    assert _value(metrics, "connectus_worker_ambiguous_total", kind="sms",
                  error="ResponseTimeout") == 1  # fmt: skip
    assert _value(metrics, "connectus_worker_deferrals_total", kind="otp",
                  reason="breaker_open", account="default") == 1  # fmt: skip


def test_in_process_retries_throttles_and_http_time_are_recorded() -> None:
    settings = load_settings({"RETRY_ATTEMPTS": "3"})
    metrics = WorkerMetrics()
    sender = ClientSender(None, settings, sleep=lambda _s: None, metrics=metrics)  # type: ignore[arg-type]
    answers: list[Exception | str] = [
        e.RateLimited("429", reason="http_429", status_code=429),
        e.ServiceUnavailable("503", reason="http_503", status_code=503),
        "p-9",
    ]

    def call(payload: Mapping[str, Any]) -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    sender.calls[Kind.SMS] = call
    assert sender(Kind.SMS, {"dst_number": "56987654321", "sms_content": "x"}) == "p-9"
    assert _value(metrics, "connectus_worker_retries_total", kind="sms", layer="in_process") == 2
    assert _value(metrics, "connectus_worker_throttles_total", kind="sms", account="default") == 1
    assert _value(metrics, "connectus_worker_send_duration_seconds_count", kind="sms") == 3


def test_rate_limiter_waits_are_observed_in_seconds() -> None:
    metrics = WorkerMetrics()
    metrics.waited("sms", 250.0)
    metrics.waited("sms", 0.0)
    assert (
        _value(
            metrics,
            "connectus_worker_ratelimit_wait_seconds_count",
            product="sms",
            account="default",
        )
        == 2
    )
    assert (
        _value(
            metrics, "connectus_worker_ratelimit_wait_seconds_sum", product="sms", account="default"
        )
        == 0.25
    )
    assert _value(metrics, "connectus_worker_ratelimit_wait_seconds_bucket", product="sms",
                  account="default", le="0.1") == 1  # fmt: skip


def _queue_registry(client: redis.Redis, keys: Keys) -> CollectorRegistry:
    breaker = CircuitBreaker(client, prefix=keys.prefix, account="acme")
    return supervisor_registry(
        None,
        [QueueCollector(client, keys, ("otp", "transactional", "bulk")),
         BreakerCollector([breaker]), SupervisorCollector(lambda: 2, lambda: 3)],
    )  # fmt: skip


class RoundTripCounting(fakeredis.FakeRedis):
    """A client that records how many commands each pipelined round trip carries."""

    def __init__(self) -> None:
        super().__init__()
        self.round_trips: list[int] = []

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> redis.client.Pipeline:
        round_trips = self.round_trips

        class Counted(redis.client.Pipeline):
            def execute(self, raise_on_error: bool = True) -> list[Any]:
                round_trips.append(len(self.command_stack))
                return super().execute(raise_on_error)

        return Counted(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def test_queue_collector_reads_every_size_in_one_round_trip() -> None:
    client = RoundTripCounting()
    keys = Keys("cw")
    client.rpush(keys.queue("otp"), "m1", "m2")
    client.rpush(keys.queue("bulk"), "m3")
    client.zadd(keys.schedule, {"a": 1, "b": 2, "c": 3})
    client.zadd(keys.dead_letters, {"d": 1, "poison:x": 2})
    client.zadd(keys.unknown, {"u": 1})
    client.zadd(keys.id_lookups, {"i1": 1, "i2": 2})
    registry = _queue_registry(client, keys)
    families = list(registry.collect())  # one scrape
    executed = client.round_trips
    # 3 queues + 5 sets: one pipelined round trip; then the breaker's (its own test)
    assert executed[0] == 8
    assert "connectus_worker_queue_messages" in {f.name for f in families}
    get = registry.get_sample_value
    assert [get("connectus_worker_queue_messages", {"queue": q})
            for q in ("otp", "transactional", "bulk")] == [2, 0, 1]  # fmt: skip
    assert get("connectus_worker_scheduled_jobs") == 3
    assert get("connectus_worker_dead_letter_jobs") == 2
    assert get("connectus_worker_unknown_jobs") == 1
    assert get("connectus_worker_review_jobs") == 0
    assert get("connectus_worker_id_lookup_jobs") == 2
    assert get("connectus_worker_redis_up") == 1
    assert get("connectus_worker_breaker_state",
               {"account": "acme", "scope": "account", "reason": ""}) == 0  # fmt: skip
    assert get("connectus_worker_processes") == 2
    assert get("connectus_worker_process_restarts_total") == 3


def test_the_breaker_gauges_show_each_open_scope_its_reason_and_until_when() -> None:
    client = fakeredis.FakeRedis()
    keys = Keys("cw")
    clock = Clock()
    breaker = CircuitBreaker(client, prefix=keys.prefix, account="acme", open_ms=30_000,
                             failure_threshold=2, clock=clock)  # fmt: skip
    chile = target_for(Kind.SMS, {"dst_number": "56987654321"})
    qr = target_for(Kind.WHATSAPP_QR, {"number": "56987654321"})
    breaker.record_failure(BalanceExhausted("x", reason="http_402"), breaker.allow(chile))
    for _ in range(2):
        breaker.record_failure(ServiceUnavailable("x", reason="http_503"), breaker.allow(qr))
    clock.advance(30_000)
    assert breaker.allow(qr).probe  # host:qr is now half-open
    registry = _queue_registry(client, keys)
    get = registry.get_sample_value
    state = "connectus_worker_breaker_state"
    assert get(state, {"account": "acme", "scope": "account", "reason": ""}) == 0
    assert get(state, {"account": "acme", "scope": "balance:sms:CL",
                       "reason": "BalanceExhausted: http_402"}) == 2  # fmt: skip
    assert get(state, {"account": "acme", "scope": "host:qr",
                       "reason": "ServiceUnavailable: http_503"}) == 1  # fmt: skip
    until = "connectus_worker_breaker_open_until_seconds"
    assert get(until, {"account": "acme", "scope": "balance:sms:CL"}) == 1_700_000_030
    assert get(until, {"account": "acme", "scope": "host:qr"}) == 1_700_000_030


def test_a_scrape_with_redis_down_says_so_instead_of_failing() -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    registry = _queue_registry(client, Keys("cw"))
    server.connected = False
    get = registry.get_sample_value
    assert get("connectus_worker_redis_up") == 0
    assert get("connectus_worker_queue_messages", {"queue": "otp"}) is None
    assert get("connectus_worker_breaker_state",
               {"account": "acme", "scope": "account", "reason": ""}) is None  # fmt: skip
    assert get("connectus_worker_processes") == 2


def test_the_multiprocess_directory_is_emptied_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    stale = tmp_path / "counter_4242.db"
    stale.write_bytes(b"old")
    keep = tmp_path / "notes.txt"
    keep.write_text("not ours")
    assert prepare_multiproc_dir(str(tmp_path)) == tmp_path
    assert not stale.exists() and keep.exists()
    fresh = prepare_multiproc_dir(None)
    assert fresh.is_dir() and list(fresh.iterdir()) == []
    fresh.rmdir()
