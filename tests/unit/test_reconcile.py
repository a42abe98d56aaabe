"""Reconciliation decisions, on fakeredis with a fake Connectus lookup API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.hashing import content_hash
from connectus_worker.domain.models import Kind, State
from connectus_worker.producers.api import Producer
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.reconcile import Reconciler
from tests.support.clock import Clock
from tests.support.pipeline import take_job, unknown_job


@dataclass
class Sms:
    id: str
    dst_number: str
    sms_content: str


@dataclass
class FakeV3:
    report: list[Sms] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    fail: bool = False

    def sms_date_report(self, *, begin_date: Any, end_date: Any) -> list[Sms]:
        self.calls.append("date_report")
        if self.fail:
            raise e.ServiceUnavailable("down", reason="http_503", status_code=503)
        return list(self.report)


@dataclass
class FakeClient:
    v3: FakeV3 = field(default_factory=FakeV3)


@pytest.fixture
def producer(clock: Clock) -> Producer:
    settings = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"})
    return Producer(settings, redis_client=fakeredis.FakeRedis(), clock=clock)


def _reconciler(producer: Producer, client: FakeClient, undecidable: str = "review") -> Reconciler:
    return Reconciler(store=producer.store, client=client, after_s=1, window_s=10,  # type: ignore[arg-type]
                      undecidable=undecidable, timezone="America/Santiago",
                      content_key=producer.settings.content_key)  # fmt: skip


def test_found_at_connectus_becomes_sent_with_its_id(producer: Producer, clock: Clock) -> None:
    job_id = unknown_job(producer, clock, {"kind": Kind.SMS, "args": ("56987654321", "hola")})
    client = FakeClient(
        FakeV3(report=[Sms("other", "56987654321", "otro"), Sms("p-1", "56987654321", "hola")])
    )
    reconciler = _reconciler(producer, client)
    assert reconciler.run_once() == {}  # too early: RECONCILE_AFTER_S not reached
    clock.now_ms += 1000
    assert reconciler.run_once() == {"found": 1}
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id) == (State.SENT, "p-1")
    assert producer.store.job_for_provider_id("p-1") == job_id


def test_one_record_is_matched_to_one_job_only(producer: Producer, clock: Clock) -> None:
    first = unknown_job(producer, clock, {"kind": Kind.SMS, "args": ("56987654321", "igual")})
    second = unknown_job(producer, clock, {"kind": Kind.SMS, "args": ("56987654321", "igual")})
    client = FakeClient(FakeV3(report=[Sms("p-1", "56987654321", "igual")]))
    clock.now_ms += 1000
    assert _reconciler(producer, client).run_once() == {"found": 1, "pending": 1}
    states = {producer.get_status(j).state for j in (first, second)}
    assert states == {State.SENT, State.UNKNOWN}


def test_not_found_after_the_window_is_sent_again(producer: Producer, clock: Clock) -> None:
    job_id = unknown_job(producer, clock, {"kind": Kind.SMS, "args": ("56987654321", "hola")})
    reconciler = _reconciler(producer, FakeClient())
    clock.now_ms += 5000
    assert reconciler.run_once() == {"pending": 1}
    clock.now_ms += 5000
    assert reconciler.run_once() == {"requeued": 1}
    record = producer.get_status(job_id)
    assert record.state is State.QUEUED
    job = take_job(producer)
    assert job["job_id"] == job_id and job["payload"]["sms_content"] == "hola"


def test_otp_not_found_is_failed_not_resent_and_matched_by_hash(
    producer: Producer, clock: Clock
) -> None:
    found = unknown_job(
        producer, clock, {"kind": Kind.OTP, "args": ("56987654321", "codigo 111111")}
    )
    lost = unknown_job(
        producer, clock, {"kind": Kind.OTP, "args": ("56987654321", "codigo 222222")}
    )
    client = FakeClient(FakeV3(report=[Sms("p-otp", "56987654321", content_hash("codigo 111111"))]))
    clock.now_ms += 20_000
    assert _reconciler(producer, client).run_once() == {"found": 1, "failed": 1}
    assert producer.get_status(found).state is State.SENT
    record = producer.get_status(lost)
    assert record.state is State.FAILED and record.error_class == "AmbiguousNotResent"
    assert producer.redis.hlen(producer.store.keys.unknown_messages) == 0


def test_email_is_undecidable_and_goes_to_review(producer: Producer, clock: Clock) -> None:
    job_id = unknown_job(
        producer, clock, {"kind": Kind.EMAIL, "args": ("a@example.com", "s", "<p>x</p>")}
    )
    clock.now_ms += 1000
    client = FakeClient()
    assert _reconciler(producer, client).run_once() == {"review": 1}
    assert client.v3.calls == []
    assert producer.redis.zscore(producer.store.keys.review, job_id) is not None
    assert producer.store.held_message(job_id, review=True) is not None
    # An operator resends it: back on its queue, same job.
    assert producer.store.resolve(
        job_id, "requeue", review=True, message=producer.store.held_message(job_id, review=True)
    )
    assert take_job(producer)["job_id"] == job_id


@pytest.mark.parametrize(("policy", "state"), [("resend", State.QUEUED), ("drop", State.FAILED)])
def test_undecidable_policy(producer: Producer, clock: Clock, policy: str, state: State) -> None:
    job_id = unknown_job(producer, clock, {"kind": Kind.EMAIL, "args": ("a@example.com", "s", "x")})
    clock.now_ms += 1000
    _reconciler(producer, FakeClient(), undecidable=policy).run_once()
    assert producer.get_status(job_id).state is state


def test_a_failing_lookup_leaves_the_job_for_later(producer: Producer, clock: Clock) -> None:
    job_id = unknown_job(producer, clock, {"kind": Kind.SMS, "args": ("56987654321", "hola")})
    client = FakeClient(FakeV3(fail=True))
    clock.now_ms += 60_000
    assert _reconciler(producer, client).run_once() == {"lookup_failed": 1}
    assert producer.get_status(job_id).state is State.UNKNOWN


def test_only_one_pass_runs_at_a_time(producer: Producer, clock: Clock) -> None:
    unknown_job(producer, clock, {"kind": Kind.SMS, "args": ("56987654321", "hola")})
    clock.now_ms += 1000
    held = _reconciler(producer, FakeClient())
    producer.redis.set(f"{producer.store.keys.prefix}:reconcile:lock", "someone-else", px=60_000)
    assert held.run_once() == {}


def test_a_job_is_looked_up_in_its_own_accounts_listing(clock: Clock) -> None:
    settings = load_settings({"CONNECTUS_ACCOUNTS": "default,brand_b"})
    producer = Producer(settings, redis_client=fakeredis.FakeRedis(), clock=clock)
    send = {"kind": Kind.SMS, "args": ("56987654321", "hola"), "options": {"account": "brand_b"}}
    job_id = unknown_job(producer, clock, send)
    listed = [Sms("p-b", "56987654321", "hola")]
    # The first account lists the same text (another message of its own): never taken.
    first, own = (
        FakeClient(FakeV3(report=[Sms("p-a", "56987654321", "hola")])),
        FakeClient(FakeV3(report=listed)),
    )
    reconciler = Reconciler(store=producer.store, client={"default": first, "brand_b": own},  # type: ignore[dict-item]
                            after_s=1, window_s=10, undecidable="review",
                            timezone="America/Santiago", content_key=settings.content_key)  # fmt: skip
    clock.now_ms += 1000
    assert reconciler.run_once() == {"found": 1}
    assert producer.get_status(job_id).provider_id == "p-b"
    assert (first.v3.calls, own.v3.calls) == ([], ["date_report"])
