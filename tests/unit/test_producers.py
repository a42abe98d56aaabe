"""Producers: bad input for every entry point names the field and enqueues nothing."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest

from connectus_worker import producers
from connectus_worker.config import load_settings
from connectus_worker.domain.hashing import content_digest, content_hash
from connectus_worker.domain.models import Kind, State
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.producers.api import JobNotFound, Producer


@pytest.fixture
def producer() -> Producer:
    settings = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "contacto@empresa.cl"})
    return Producer(settings, redis_client=fakeredis.FakeRedis())


def _nothing_written(producer: Producer) -> bool:
    return producer.redis.dbsize() == 0


GOOD_NUMBER = "+56 9 8765 4321"

BAD_CALLS: list[tuple[str, Callable[[Producer], Any], set[str]]] = [
    ("sms bad number", lambda p: p.send_sms("12345", "hola"), {"dst_number"}),
    ("sms empty content", lambda p: p.send_sms(GOOD_NUMBER, "   "), {"sms_content"}),
    ("sms too long", lambda p: p.send_sms(GOOD_NUMBER, "x" * 1601), {"sms_content"}),
    ("sms bad deliver_at", lambda p: p.send_sms(GOOD_NUMBER, "hola", deliver_at="mañana"), {"deliver_at"}),
    ("sms bad key", lambda p: p.send_sms(GOOD_NUMBER, "hola", idempotency_key="a b"), {"idempotency_key"}),
    ("sms bad client", lambda p: p.send_sms(GOOD_NUMBER, "hola", id_client=""), {"id_client"}),
    ("sms bad priority", lambda p: p.send_sms(GOOD_NUMBER, "hola", priority="urgent"), {"priority"}),
    ("sms two bad fields", lambda p: p.send_sms("abc", ""), {"dst_number", "sms_content"}),
    ("otp bad number", lambda p: p.send_otp("56", "code 1"), {"dst_number"}),
    ("otp empty", lambda p: p.send_otp(GOOD_NUMBER, ""), {"sms_content"}),
    ("email bad address", lambda p: p.send_email("not-an-email", "s", "<p>x</p>"), {"dst_email"}),
    ("email empty subject", lambda p: p.send_email("a@example.com", "", "<p>x</p>"), {"subject"}),
    ("email empty body", lambda p: p.send_email("a@example.com", "s", ""), {"email_content"}),
    ("email bad src", lambda p: p.send_email("a@example.com", "s", "x", src_email="nope"), {"src_email"}),
    ("email bad src and body", lambda p: p.send_email("a@example.com", "s", "", src_email="x@"), {"src_email", "email_content"}),
    ("otp email bad", lambda p: p.send_otp_email("x@", "s", "x"), {"dst_email"}),
    ("whatsapp no src", lambda p: p.send_whatsapp(GOOD_NUMBER, "hola"), {"src_number"}),
    ("whatsapp empty", lambda p: p.send_whatsapp(GOOD_NUMBER, "", src_number="56999944837"),
     {"whatsapp_content"}),
    ("whatsapp qr bad number", lambda p: p.send_whatsapp_qr("0", "hola"), {"number"}),
    ("whatsapp qr empty", lambda p: p.send_whatsapp_qr(GOOD_NUMBER, ""), {"message"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "call", "fields"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_names_each_field_and_enqueues_nothing(
    producer: Producer, name: str, call: Callable[[Producer], Any], fields: set[str]
) -> None:
    with pytest.raises(InvalidInput) as info:
        call(producer)
    assert {error.field for error in info.value.errors} == fields
    for error in info.value.errors:
        assert error.reason and error.field in str(info.value)
    assert _nothing_written(producer)


def test_email_without_origin_or_default_is_refused() -> None:
    producer = Producer(load_settings({}), redis_client=fakeredis.FakeRedis())
    with pytest.raises(InvalidInput, match="src_email: is required"):
        producer.send_email("a@example.com", "s", "x")
    assert _nothing_written(producer)


def test_naive_deliver_at_means_santiago_time() -> None:
    producer = Producer(
        load_settings({"JOB_TTL_S": str(400 * 86400)}), redis_client=fakeredis.FakeRedis()
    )
    job_id = producer.send_sms(GOOD_NUMBER, "hola", deliver_at=datetime(2027, 1, 15, 9, 0))
    record = producer.get_status(job_id)
    assert record.state is State.SCHEDULED
    # January: Chile is on summer time, UTC-3.
    assert (
        record.deliver_at is not None
        and record.deliver_at.isoformat() == "2027-01-15T12:00:00+00:00"
    )


def test_otp_record_keeps_only_a_keyed_digest(producer: Producer) -> None:
    text = "Tu codigo es 987123"
    job_id = producer.send_otp(GOOD_NUMBER, text)
    raw = producer.redis.hgetall(producer.store.keys.job(job_id))
    assert not any(b"987123" in value for value in raw.values())
    # Neither the plain SHA-256 (a 6-digit code is recovered from it by trying
    # the million codes) nor anything that hashes the text without the key.
    plain = content_hash(text).encode()
    assert not any(plain in value for value in raw.values())
    assert raw[b"content_hmac"].decode() == content_digest(producer.settings.content_key, text)
    other = Producer(
        load_settings({"CONTENT_HASH_KEY": "x" * 40}), redis_client=fakeredis.FakeRedis()
    )
    other_id = other.send_otp(GOOD_NUMBER, text)
    assert other.redis.hget(other.store.keys.job(other_id), "content_hmac") != raw[b"content_hmac"]
    record = producer.get_status(job_id)
    assert record.kind is Kind.OTP and record.queue == "otp"
    assert record.content_hmac == raw[b"content_hmac"].decode()
    # ... and no answer shows it (the API and `connectus status --json` dump this).
    assert "content_hmac" not in record.model_dump(mode="json")
    assert plain.decode() not in record.model_dump_json()
    assert record.dst == "569*****321"


def test_otp_is_never_put_on_the_bulk_queue(producer: Producer) -> None:
    job_id = producer.send_otp(GOOD_NUMBER, "codigo 1")
    assert producer.get_status(job_id).queue == "otp"
    bulk_id = producer.send_sms(GOOD_NUMBER, "promo", priority="bulk")
    assert producer.get_status(bulk_id).queue == "bulk"


def test_deliver_at_beyond_the_record_lifetime_is_refused(producer: Producer) -> None:
    with pytest.raises(InvalidInput, match="deliver_at: is later than the job records live"):
        producer.send_sms(GOOD_NUMBER, "hola", deliver_at=datetime.now(UTC) + timedelta(days=30))
    assert _nothing_written(producer)


def test_unknown_job_is_a_clear_error(producer: Producer) -> None:
    with pytest.raises(JobNotFound, match="job_id: no job 'nope'"):
        producer.get_status("nope")


def test_module_level_functions_use_the_configured_producer() -> None:
    client = fakeredis.FakeRedis()
    producers.configure(
        load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "a@b.cl"}), redis_client=client
    )
    job_id = producers.send_email("ana@example.com", "Hola", "<b>hola</b>", idempotency_key="e-1")
    assert (
        producers.send_email("ana@example.com", "Hola", "<b>hola</b>", idempotency_key="e-1")
        == job_id
    )
    assert producers.get_status(job_id).dst == "a***@example.com"
    with pytest.raises(producers.IdempotencyConflict):
        producers.send_email("ana@example.com", "Hola", "<b>otro</b>", idempotency_key="e-1")
    assert producers.cancel(job_id) == "cancelled"


def test_module_level_functions_show_the_producers_typed_parameters() -> None:
    signature = inspect.signature(producers.send_sms)
    assert list(signature.parameters)[:3] == ["dst_number", "sms_content", "src_number"]
    assert signature.parameters["src_number"].kind is inspect.Parameter.KEYWORD_ONLY
    assert producers.send_sms.__doc__ == Producer.send_sms.__doc__


def test_a_misspelt_option_is_refused_naming_it(producer: Producer) -> None:
    with pytest.raises(InvalidInput, match="deliver_on"):
        producer.send_sms(GOOD_NUMBER, "hola", deliver_on="2030-01-01")  # type: ignore[call-arg]
    assert _nothing_written(producer)


class CountingRedis(fakeredis.FakeRedis):
    """Counts the commands (round trips) it is sent."""

    commands = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands += 1
        return super().execute_command(*args, **options)


def test_a_watched_email_is_queued_and_watched_in_the_same_round_trips_as_an_sms() -> None:
    settings = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "contacto@empresa.cl"})
    client = CountingRedis()
    producer = Producer(settings, redis_client=client)
    producer.send_sms(GOOD_NUMBER, "warm-up")  # loads the script
    watch = producer.store.keys.status_watch
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    before = client.commands
    producer.send_sms(GOOD_NUMBER, "hola")
    sms_commands, before = client.commands - before, client.commands
    email = producer.send_email("ana@example.com", "Hola", "<p>hola</p>", deliver_at=later)
    assert client.commands - before == sms_commands
    assert client.zrange(watch, 0, -1, withscores=True) == [
        (email.encode(), later.timestamp() * 1000)  # first looked up when it is due
    ]
    again = producer.send_email("ana@example.com", "Hola", "<p>hola</p>", idempotency_key="k")
    assert (
        producer.send_email("ana@example.com", "Hola", "<p>hola</p>", idempotency_key="k") == again
    )
    assert client.zcard(watch) == 2


def test_opted_out_numbers_get_no_marketing_but_still_get_otp_and_transactional(
    producer: Producer,
) -> None:
    producer.redis.sadd(producer.store.keys.opt_out, "56987654321")
    with pytest.raises(InvalidInput, match="dst_number: opted out of marketing messages"):
        producer.send_sms(GOOD_NUMBER, "Promo", priority="bulk")
    assert (
        producer.get_status(producer.send_sms(GOOD_NUMBER, "Su pedido llegó")).state is State.QUEUED
    )
    assert producer.get_status(producer.send_otp(GOOD_NUMBER, "codigo 1")).state is State.QUEUED
    assert (
        producer.get_status(producer.send_sms("56987654322", "Promo", priority="bulk")).queue
        == "bulk"
    )


def test_whatsapp_without_src_number_uses_connectus_whatsapp_src_number() -> None:
    from connectus_worker.domain.requests import parse_request

    settings = load_settings({"CONNECTUS_WHATSAPP_SRC_NUMBER": "56999944837"})
    fields = {"type": "whatsapp", "dst_number": GOOD_NUMBER, "whatsapp_content": "hola"}
    assert parse_request(fields, settings).payload["src_number"] == "56999944837"
    # One given still wins over the setting.
    given = parse_request({**fields, "src_number": "4374"}, settings)
    assert given.payload["src_number"] == "4374"
    producer = Producer(settings, redis_client=fakeredis.FakeRedis())
    job = producer.get_status(producer.send_whatsapp(GOOD_NUMBER, "hola"))
    assert job.kind is Kind.WHATSAPP and job.state is State.QUEUED


def test_whatsapp_without_src_number_or_setting_names_both() -> None:
    producer = Producer(load_settings({}), redis_client=fakeredis.FakeRedis())
    with pytest.raises(InvalidInput, match="CONNECTUS_WHATSAPP_SRC_NUMBER") as caught:
        producer.send_whatsapp(GOOD_NUMBER, "hola")
    assert [e.field for e in caught.value.errors] == ["src_number"]


def test_a_subclients_sms_must_go_to_a_connectus_country(producer: Producer) -> None:
    with pytest.raises(InvalidInput, match="none of Connectus's countries") as caught:
        producer.send_sms("+34 612 34 56 78", "hola", id_client="da82la12")
    assert [e.field for e in caught.value.errors] == ["dst_number"]
    assert _nothing_written(producer)
    # Without a subclient the account's balance decides (the sandbox: ESME_RINVDSTADR).
    assert producer.get_status(producer.send_sms("+34 612 34 56 78", "hola")).kind is Kind.SMS
    assert producer.send_sms(GOOD_NUMBER, "hola", id_client="da82la12")
