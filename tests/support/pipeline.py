"""The send pipeline's test doubles and steps, shared by the unit tests built on it."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import dramatiq

from connectus_worker.domain.models import Kind
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.connectus.errors import ServiceUnavailable
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.reconcile import Reconciler
from tests.support.clock import Clock


class FakeSender:
    """A send function that answers with the given outcomes in turn (an id, or raises)."""

    def __init__(self, *outcomes: Exception | str) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[Kind, dict[str, Any]]] = []

    def __call__(self, kind: Kind, payload: Mapping[str, Any]) -> str:
        self.calls.append((kind, dict(payload)))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def take_job(producer: Producer, queue: str = "transactional") -> dict[str, Any]:
    """The job of the next message on ``queue``, taken off it as a worker would."""
    keys: Keys = producer.store.keys
    rid = producer.redis.lpop(keys.queue(queue))
    data = producer.redis.hget(keys.queue_messages(queue), rid)
    return dramatiq.Message.decode(data).kwargs["job"]


def guarded(producer: Producer, sender: FakeSender, clock: Clock, **limits: Any):  # type: ignore[no-untyped-def]
    from connectus_worker.worker.breaker import CircuitBreaker
    from connectus_worker.worker.ratelimit import Bucket, Limits, RateLimiter

    breaker = CircuitBreaker(producer.redis, prefix="t", account="acct", failure_threshold=2,
                             open_ms=30_000, clock=clock)  # fmt: skip
    buckets = {
        p: Bucket(limits.get("rate", 100.0), limits.get("burst", 100))
        for p in ("sms", "otp", "email", "whatsapp")
    }
    limiter = RateLimiter(producer.redis, Limits(buckets=buckets, min_rate_per_s=1.0, min_throttles=limits.get("min_throttles", 3)), prefix="t", account="acct", clock=clock,
                          sleep=lambda s: None)  # fmt: skip
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=sender, worker_id="w", lease_ms=60_000, clock=clock,
                            rng=random.Random(1), breaker=breaker, limiter=limiter, acquire_timeout_s=0.0,
                            policy=RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                                               max_message_age_s=3600))  # fmt: skip
    return pipeline, breaker, limiter


def unknown_job(producer: Producer, clock: Clock, send: Mapping[str, Any]) -> str:
    """Queue a job and run it into ``unknown`` (a dropped answer)."""
    kind = send["kind"]
    job_id = getattr(producer, f"send_{kind.value}")(*send["args"], **send.get("options", {}))
    queue = "otp" if kind.spec.otp else "transactional"
    policy = RetryPolicy(
        max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000, max_message_age_s=3600
    )
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=FakeSender(e.ConnectionDropped("d", reason="dropped")),
                            policy=policy, worker_id="w", lease_ms=60_000, clock=clock, rng=random.Random(1))  # fmt: skip
    assert pipeline.handle(kind, take_job(producer, queue)) == "unknown"
    return job_id


#: The content-digest key of these tests' pipelines and lookups.
KEY = b"k" * 32

Listing = list[tuple[str | None, str | None, str | None]]


class Listings:
    """Stands in for the reconciler's LookupCache: what Connectus would list."""

    def __init__(self, sms: Listing | None = None, whatsapp: Listing | None = None) -> None:
        self._sms = sms or []
        self._whatsapp = whatsapp or []
        self.fail = False
        self.asked: list[tuple[str, Any]] = []

    def sms(self, id_delivery: str | None, created_at: datetime) -> Listing:
        self.asked.append(("sms", id_delivery))
        if self.fail:
            raise ServiceUnavailable("down", reason="http_503", status_code=503)
        return self._sms

    def whatsapp(self, src: str, dst: str) -> Listing:
        self.asked.append(("whatsapp", (src, dst)))
        return self._whatsapp

    def qr(self, number: str) -> Listing:
        self.asked.append(("qr", number))
        return []


def send_unnamed(producer: Producer, clock: Clock, kind: Kind) -> str:
    """Take the queued job of ``kind`` and send it through a sender that names no id."""
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip

    def sender(kind: Kind, payload: Mapping[str, Any]) -> str | None:
        return None

    pipeline = SendPipeline(content_key=KEY, store=producer.store, send=sender, policy=policy, worker_id="w",
                            lease_ms=60_000, clock=clock, rng=random.Random(1))  # fmt: skip
    keys: Keys = producer.store.keys
    queue = "otp" if kind.spec.otp else "transactional"
    rid = producer.redis.lpop(keys.queue(queue))
    job = dramatiq.Message.decode(producer.redis.hget(keys.queue_messages(queue), rid))
    return pipeline.handle(kind, job.kwargs["job"])


def lookup_of(producer: Producer, **kwargs: Any) -> Reconciler:
    """A reconciler whose :meth:`Reconciler.look_up_ids` the tests drive with stand-in listings."""
    return Reconciler(store=producer.store, client={}, content_key=KEY,
                      after_s=kwargs.get("after_s", 30), window_s=kwargs.get("window_s", 300),
                      undecidable="review", timezone="America/Santiago")  # fmt: skip
