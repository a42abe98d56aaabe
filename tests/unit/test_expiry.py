"""Time limits: age counts from when a job is due; OTP_MAX_AGE_S; a job's own limit.

The worker's clock is injected and driven past the limits (fakeredis): a job
scheduled days ahead is sent when due, an OTP not sent in time is never sent,
and a producer's ``max_age_s`` / ``expires_at`` is kept to the millisecond.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import dramatiq
import fakeredis
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind, State
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.producers.api import Producer
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from tests.support.clock import Clock
from tests.support.pipeline import FakeSender, guarded, take_job

DAY_MS = 86_400_000


@pytest.fixture
def clock() -> Clock:
    # The producer checks deliver_at and expires_at against the wall clock, so
    # the manual clock starts there and is then driven forward by the tests.
    return Clock(epoch_ms())


@pytest.fixture
def producer(clock: Clock) -> Producer:
    settings = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"})
    return Producer(settings, redis_client=fakeredis.FakeRedis(), clock=clock)


def _pipeline(producer: Producer, sender: FakeSender, clock: Clock) -> SendPipeline:
    # The defaults: MAX_MESSAGE_AGE_S one day, OTP_MAX_AGE_S 300 s.
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=86_400, otp_max_age_s=300)  # fmt: skip
    return SendPipeline(content_key=b"k" * 32, store=producer.store, send=sender, policy=policy, worker_id="w",
                        lease_ms=60_000, clock=clock, rng=random.Random(1))  # fmt: skip


def _at(clock: Clock, delta: timedelta) -> datetime:
    return datetime.fromtimestamp(clock.now_ms / 1000, tz=UTC) + delta


def _come_due(producer: Producer, clock: Clock, at: datetime) -> None:
    """Drive the clock to ``at`` and let the scheduler move what is due."""
    clock.now_ms = int(at.timestamp() * 1000)
    assert producer.store.promote_due() == 1


# --- the bug: age counted from creation ---------------------------------------------


def test_a_job_scheduled_five_days_ahead_is_sent_when_due(producer: Producer, clock: Clock) -> None:
    due = _at(clock, timedelta(days=5))
    job_id = producer.send_sms("56987654321", "hola", deliver_at=due)
    assert producer.get_status(job_id).state is State.SCHEDULED
    _come_due(producer, clock, due + timedelta(minutes=1))
    sender = FakeSender("prov-1")
    assert _pipeline(producer, sender, clock).handle(Kind.SMS, take_job(producer)) == "sent"
    assert producer.get_status(job_id).state is State.SENT and len(sender.calls) == 1


def test_a_scheduled_job_expires_a_day_after_it_was_due_not_after_it_was_made(
    producer: Producer, clock: Clock
) -> None:
    due = _at(clock, timedelta(days=3))
    job_id = producer.send_sms("56987654321", "hola", deliver_at=due)
    # The scheduler was down: it comes due a day and a second late.
    _come_due(producer, clock, due + timedelta(days=1, seconds=1))
    sender = FakeSender()
    assert _pipeline(producer, sender, clock).handle(Kind.SMS, take_job(producer)) == "failed"
    record = producer.get_status(job_id)
    assert (record.state, record.error_class) == (State.FAILED, "Expired") and sender.calls == []
    assert "MAX_MESSAGE_AGE_S (86400 s) after it was due" in (record.last_error or "")
    assert due.replace(microsecond=0).isoformat() not in (record.last_error or "")
    expected = (due + timedelta(days=1)).replace(microsecond=0).isoformat()
    assert expected in (record.last_error or "")  # when it ran out


# --- OTPs ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.OTP, Kind.OTP_EMAIL])
def test_an_otp_not_sent_within_otp_max_age_is_never_sent(
    producer: Producer, clock: Clock, kind: Kind
) -> None:
    def submit() -> str:
        if kind is Kind.OTP:
            return producer.send_otp("56987654321", "Código 482913")
        return producer.send_otp_email("ana@example.com", "Código", "<p>482913</p>")

    fresh, stale = submit(), submit()
    pipeline = _pipeline(producer, FakeSender("prov-1"), clock)
    clock.now_ms += 299_000
    assert pipeline.handle(kind, take_job(producer, "otp")) == "sent"
    clock.now_ms += 2_000  # 301 s after it was due
    sender = FakeSender()
    pipeline = _pipeline(producer, sender, clock)
    assert pipeline.handle(kind, take_job(producer, "otp")) == "failed"
    record = producer.get_status(stale)
    assert (record.state, record.error_class) == (State.FAILED, "Expired") and sender.calls == []
    assert "OTP_MAX_AGE_S (300 s)" in (record.last_error or "")
    assert producer.get_status(fresh).state is State.SENT


def test_an_expired_otp_is_failed_at_once_not_held_by_an_open_breaker(
    producer: Producer, clock: Clock
) -> None:
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    sender = FakeSender(busy, busy)
    pipeline, breaker, _ = guarded(producer, sender, clock)
    producer.send_sms("56987654321", "uno")
    producer.send_sms("56987654321", "dos")
    otp = producer.send_otp("56987654321", "Código 482913")
    pipeline.handle(Kind.SMS, take_job(producer))
    pipeline.handle(Kind.SMS, take_job(producer))
    assert breaker.status()["state"] == "open"
    job = take_job(producer, "otp")
    assert pipeline.handle(Kind.OTP, job) == "deferred:breaker_open"
    clock.now_ms += 301_000
    assert pipeline.handle(Kind.OTP, job) == "failed"  # not deferred again
    record = producer.get_status(otp)
    assert (record.error_class, record.attempts) == ("Expired", 1) and len(sender.calls) == 2


# --- a job's own limit -------------------------------------------------------------------


def test_max_age_s_counts_from_deliver_at(producer: Producer, clock: Clock) -> None:
    due = _at(clock, timedelta(hours=2))
    job_id = producer.send_sms("56987654321", "hola", deliver_at=due, max_age_s=60)
    record = producer.get_status(job_id)
    assert record.expires_at == (due + timedelta(seconds=60)).replace(
        microsecond=due.microsecond // 1000 * 1000
    )
    _come_due(producer, clock, due + timedelta(seconds=61))
    sender = FakeSender()
    assert _pipeline(producer, sender, clock).handle(Kind.SMS, take_job(producer)) == "failed"
    record = producer.get_status(job_id)
    assert record.error_class == "Expired" and "max_age_s" in (record.last_error or "")
    assert sender.calls == []


def test_max_age_s_within_its_limit_is_sent(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_whatsapp("56987654321", "hola", src_number="56999944837", max_age_s=60)
    clock.now_ms += 59_000
    sender = FakeSender("prov-1")
    assert _pipeline(producer, sender, clock).handle(Kind.WHATSAPP, take_job(producer)) == "sent"
    assert producer.get_status(job_id).state is State.SENT


def test_an_otp_s_own_limit_replaces_otp_max_age(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_otp("56987654321", "Código 482913", max_age_s=900)
    clock.now_ms += 600_000  # past OTP_MAX_AGE_S, within its own 900 s
    sender = FakeSender("prov-1")
    assert _pipeline(producer, sender, clock).handle(Kind.OTP, take_job(producer, "otp")) == "sent"
    assert producer.get_status(job_id).state is State.SENT


def test_expires_at_is_kept_to_the_millisecond(producer: Producer, clock: Clock) -> None:
    until = _at(clock, timedelta(minutes=10))
    job_id = producer.send_email("ana@example.com", "s", "<p>x</p>", expires_at=until)
    job = take_job(producer)
    clock.now_ms = int(until.timestamp() * 1000)
    pipeline = _pipeline(producer, FakeSender(), clock)
    clock.now_ms += 1
    assert pipeline.handle(Kind.EMAIL, job) == "failed"
    assert producer.get_status(job_id).error_class == "Expired"


def test_a_retry_that_comes_due_after_the_expiry_is_not_sent(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola", max_age_s=5)
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    sender = FakeSender(busy)
    pipeline = _pipeline(producer, sender, clock)
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "retrying"
    clock.now_ms += 10_000  # every backoff of the policy is over, and so is the limit
    assert producer.store.promote_due() == 1
    assert pipeline.handle(Kind.SMS, take_job(producer)) == "failed"
    record = producer.get_status(job_id)
    assert (record.error_class, len(sender.calls)) == ("Expired", 1)


def test_a_message_of_an_older_producer_without_times_is_not_expired(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    job = take_job(producer)
    del job["created_ms"]
    sender = FakeSender("prov-1")
    assert _pipeline(producer, sender, clock).handle(Kind.SMS, job) == "sent"
    assert producer.get_status(job_id).state is State.SENT


# --- validation (domain.requests, shared by producers, CLI and intake) -----------------

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def _build(now: datetime = NOW, **kwargs: object):  # type: ignore[no-untyped-def]
    from connectus_worker.domain.requests import parse_request

    fields = {"type": "sms", "dst_number": "56987654321", "sms_content": "hola", **kwargs}
    return parse_request(fields, load_settings({}), now=now)


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"max_age_s": 0}, "max_age_s", "greater than 0"),
        ({"max_age_s": -30}, "max_age_s", "greater than 0"),
        ({"max_age_s": float("nan")}, "max_age_s", "finite"),
        ({"max_age_s": float("inf")}, "max_age_s", "finite"),
        ({"max_age_s": "300"}, "max_age_s", "a number of seconds"),
        ({"max_age_s": True}, "max_age_s", "a number of seconds"),
        ({"max_age_s": 7 * 86_400}, "max_age_s", "longer than the job records live"),
        ({"max_age_s": 60, "expires_at": "2030-01-15T13:00:00Z"}, "expires_at", "not both"),
        ({"expires_at": "2030-01-15 13:00:00"}, "expires_at", "no UTC offset"),
        ({"expires_at": datetime(2030, 1, 15, 13, 0)}, "expires_at", "no UTC offset"),
        ({"expires_at": "2030-01-15T11:59:59Z"}, "expires_at", "not in the future"),
        ({"expires_at": "2030-01-15T12:00:00+00:00"}, "expires_at", "not in the future"),
        ({"expires_at": "tomorrow"}, "expires_at", "not an ISO 8601"),
        ({"expires_at": "9999-12-31T23:59:59-05:00"}, "expires_at", "out of the range of dates"),
        ({"expires_at": ""}, "expires_at", "is empty"),
        ({"expires_at": 1_900_000_000}, "expires_at", "ISO 8601"),
        ({"expires_at": "2030-01-22T12:00:00Z"}, "expires_at", "more than the job records live"),
        ({"expires_at": "2030-01-15T13:00:00Z", "deliver_at": "2030-01-15T14:00:00Z"},
         "expires_at", "not after deliver_at"),
    ],
)  # fmt: skip
def test_bad_limits_are_refused_naming_the_field(
    kwargs: dict[str, object], field: str, reason: str
) -> None:
    from connectus_worker.domain.validation import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        _build(**kwargs)
    assert [(err.field, reason in err.reason) for err in caught.value.errors] == [(field, True)]


def test_a_limit_is_stored_as_given_and_worked_out_from_when_it_is_due() -> None:
    request = _build(max_age_s=90.5, deliver_at="2030-01-16T08:00:00Z")
    due_ms = int(datetime(2030, 1, 16, 8, tzinfo=UTC).timestamp() * 1000)
    assert (request.max_age_s, request.expires_ms(0)) == (90.5, due_ms + 90_500)
    until = _build(expires_at="2030-01-15T09:30:00-03:00")  # 12:30 UTC
    assert until.expires_at == datetime(2030, 1, 15, 12, 30, tzinfo=UTC)
    assert until.expires_ms(0) == int(until.expires_at.timestamp() * 1000)
    assert _build().expires_ms(0) is None


def test_the_same_relative_limit_is_the_same_request_for_idempotency() -> None:
    later = [_build(now=NOW + timedelta(seconds=s), max_age_s=60) for s in (0, 30)]
    key = b"k" * 32
    assert later[0].fingerprint(key) == later[1].fingerprint(key)
    assert later[0].fingerprint(key) != _build().fingerprint(key)
    assert _build().fingerprint(key) != _build(max_age_s=61).fingerprint(key)


def test_a_repeated_key_with_the_same_limit_is_one_job(producer: Producer, clock: Clock) -> None:
    first = producer.send_sms("56987654321", "hola", idempotency_key="k1", max_age_s=60)
    clock.now_ms += 5_000
    assert producer.send_sms("56987654321", "hola", idempotency_key="k1", max_age_s=60) == first


# --- campaigns: a parked message is due again when its campaign resumes ---------------


def test_a_campaign_message_parked_over_a_weekend_is_sent_when_the_campaign_resumes(
    clock: Clock,
) -> None:
    from connectus_worker.campaign.model import CampaignState as S
    from connectus_worker.campaign.store import CampaignStore, ReleasedJob, job_id_for
    from connectus_worker.ledger.job_messages import new_message
    from connectus_worker.ledger.jobs import JobStore
    from connectus_worker.ledger.keys import Keys

    from .test_campaign_store import _create

    client = fakeredis.FakeRedis()
    keys = Keys("t")
    campaigns = CampaignStore(client, keys, ttl_s=30 * 86_400, job_ttl_s=7 * 86_400, clock=clock)
    jobs = JobStore(client, keys, ttl_s=7 * 86_400, clock=clock)
    _create(campaigns, total=2)
    assert campaigns.transition("c1", S.RUNNING, allowed_from=[S.SCHEDULED]).status == "ok"
    campaign = campaigns.get("c1")
    assert campaign is not None
    released = []
    for index, row in enumerate(campaigns.chunk("c1", 0)):
        job_id = job_id_for("c1", index)
        job = {"job_id": job_id, "kind": "sms", "key": f"campaign:c1:{index}", "queue": "bulk",
               "payload": {"dst_number": row[0], "sms_content": "x"}, "campaign": "c1",
               "created_ms": clock.now_ms}  # fmt: skip
        released.append(ReleasedJob(job_id, job["key"], "569****", 1,
                                    new_message("bulk", "send_sms", job)))  # fmt: skip
    assert campaigns.release(campaign, released, queue="bulk")
    assert campaigns.transition("c1", S.PAUSED, allowed_from=[S.RUNNING]).status == "ok"
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=86_400)  # fmt: skip
    sender = FakeSender("p1", "p2")
    pipeline = SendPipeline(content_key=b"k" * 32, store=jobs, send=sender, policy=policy, worker_id="w",
                            lease_ms=60_000, clock=clock, rng=random.Random(1),
                            park=campaigns.park)  # fmt: skip

    def take() -> dict[str, object]:
        rid = client.lpop(keys.queue("bulk"))
        data = client.hget(keys.queue_messages("bulk"), rid)  # type: ignore[arg-type]
        job: dict[str, object] = dramatiq.Message.decode(data).kwargs["job"]  # type: ignore[arg-type]
        return job

    first, second = take(), take()
    assert pipeline.handle(Kind.SMS, first) == "skipped:paused"
    clock.now_ms += 3 * DAY_MS  # paused from Friday to Monday
    # Still paused: the message is parked again, not dead-lettered.
    assert pipeline.handle(Kind.SMS, second) == "skipped:paused"
    assert campaigns.parked("c1") == 2
    assert campaigns.transition("c1", S.RUNNING, allowed_from=[S.PAUSED]).status == "ok"
    assert [pipeline.handle(Kind.SMS, take()) for _ in range(2)] == ["sent", "sent"]
    assert len(sender.calls) == 2
