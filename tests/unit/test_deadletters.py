"""Dead-letter queries: filters by queue, reason and age; show masks; purge; poison (fakeredis)."""

from __future__ import annotations

import random

import fakeredis
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.deadletters import DeadLetters, Filter, parse_duration
from connectus_worker.producers.api import Producer
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from tests.support.clock import Clock
from tests.support.pipeline import FakeSender, take_job

HOUR_MS = 3_600_000


@pytest.fixture
def producer(clock: Clock) -> Producer:
    settings = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"})
    return Producer(settings, redis_client=fakeredis.FakeRedis(), clock=clock)


def _dead(producer: Producer, clock: Clock, kind: Kind, error: Exception) -> str:
    """Send one job of ``kind`` through the pipeline into the dead-letter set."""
    if kind is Kind.EMAIL:
        job_id = producer.send_email("ana@example.com", "s", "<p>x</p>")
    elif kind is Kind.OTP:
        job_id = producer.send_otp("56987654321", "codigo 123456")
    else:
        job_id = producer.send_sms("56987654321", "hola", priority="bulk")
    queue = {Kind.EMAIL: "transactional", Kind.OTP: "otp"}.get(kind, "bulk")
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=FakeSender(error), policy=policy,
                            worker_id="w", lease_ms=60_000, clock=clock, rng=random.Random(1))  # fmt: skip
    assert pipeline.handle(kind, take_job(producer, queue)) == "failed"
    return job_id


@pytest.fixture
def letters(producer: Producer, clock: Clock) -> tuple[DeadLetters, dict[str, str]]:
    ids = {"old_sms": _dead(producer, clock, Kind.SMS, e.InvalidNumber("NUMERO_INVALIDO",
                                                                      reason="invalid_number"))}  # fmt: skip
    clock.now_ms += 2 * HOUR_MS
    # A millisecond apart: entries with equal scores come back in member (random id) order.
    ids["email"] = _dead(producer, clock, Kind.EMAIL, e.Rejected("blocked domain", reason="x"))
    clock.now_ms += 1
    ids["otp"] = _dead(producer, clock, Kind.OTP, e.NotFound("no such route", reason="http_404"))
    clock.now_ms += 1
    ids["poison"] = producer.store.quarantine(b'{"actor": "send_sms"}', "malformed job: no job")
    clock.now_ms += 60_000
    return DeadLetters(producer.store), ids


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "45s", "30m", "1h", "2d", "1.5h")] == [
        90, 45, 1800, 3600, 172_800, 5400,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_filters_by_queue_reason_and_age(letters: tuple[DeadLetters, dict[str, str]]) -> None:
    dlq, ids = letters

    def found(**kwargs: object) -> list[str]:
        return [entry.member for entry in dlq.find(Filter(**kwargs))]  # type: ignore[arg-type]

    assert found() == [ids["poison"], ids["otp"], ids["email"], ids["old_sms"]]  # newest first
    assert found(queue="bulk") == [ids["old_sms"]]
    assert found(reason="invalidnumber") == [ids["old_sms"]]  # error class, any case
    assert found(reason="blocked") == [ids["email"]]  # last error
    assert found(reason="no job") == [ids["poison"]]  # a poison entry's reason
    assert found(older_than_s=3600) == [ids["old_sms"]]
    assert found(newer_than_s=3600) == [ids["poison"], ids["otp"], ids["email"]]
    assert found(newer_than_s=3600, queue="otp") == [ids["otp"]]
    assert dlq.find(Filter(), limit=2)[1].member == ids["otp"]


def test_poison_entries_and_otps_are_not_replayable(
    letters: tuple[DeadLetters, dict[str, str]],
) -> None:
    dlq, ids = letters
    entries = {e.member: e for e in dlq.find(Filter())}
    assert entries[ids["email"]].replayable == (True, "")
    poison = entries[ids["poison"]]
    assert poison.poison and poison.error_class == "Malformed" and poison.record is None
    assert "poison" in poison.replayable[1]
    assert "OTP" in entries[ids["otp"]].replayable[1]


def test_a_job_past_its_expiry_is_not_replayable_and_says_why(
    producer: Producer, letters: tuple[DeadLetters, dict[str, str]]
) -> None:
    from connectus_worker.domain.expiry import AgeLimits

    _, ids = letters
    # The jobs were due when queued; the oldest two hours ago, past a one-hour limit.
    dlq = DeadLetters(producer.store, limits=AgeLimits(max_message_age_s=3600, otp_max_age_s=300))
    entries = {e.member: e for e in dlq.find(Filter())}
    ok, why = entries[ids["old_sms"]].replayable
    assert not ok and why.startswith("it would expire again at once: expired: not sent by ")
    assert "MAX_MESSAGE_AGE_S (3600 s) after it was due" in why
    assert entries[ids["email"]].replayable == (True, "")
    assert entries[ids["old_sms"]].as_dict()["not_replayable_because"] == why
    assert entries[ids["email"]].as_dict()["not_replayable_because"] is None
    # Without the deployment's limits, only a job's own expires_at counts.
    assert DeadLetters(producer.store).get(ids["old_sms"]).replayable == (True, "")  # type: ignore[union-attr]


def test_show_masks_the_destination(letters: tuple[DeadLetters, dict[str, str]]) -> None:
    dlq, ids = letters
    message = dlq.message(ids["old_sms"])
    assert message is not None and message["queue"] == "bulk"
    payload = message["kwargs"]["job"]["payload"]
    assert payload["dst_number"] == "569*****321" and payload["sms_content"] == "hola"
    assert "56987654321" not in str(message)
    email = dlq.message(ids["email"])
    assert (
        email is not None and email["kwargs"]["job"]["payload"]["dst_email"] == "a***@example.com"
    )
    otp = dlq.message(ids["otp"])
    assert otp is not None and "codigo" not in str(otp)  # never stored
    assert dlq.message(ids["poison"]) == {"raw": {"actor": "send_sms"}}


def test_purge_removes_entries_messages_and_reasons(
    producer: Producer, letters: tuple[DeadLetters, dict[str, str]]
) -> None:
    dlq, ids = letters
    keys = producer.store.keys
    assert dlq.purge([ids["poison"], ids["email"], "not-there"]) == 2
    assert [e.member for e in dlq.find(Filter())] == [ids["otp"], ids["old_sms"]]
    for member in (ids["poison"], ids["email"]):
        assert not producer.redis.hexists(keys.dead_letter_messages, member)
        assert not producer.redis.hexists(keys.dead_letter_reasons, member)
    assert producer.get_status(ids["email"]).state == "failed"  # the record stays
