"""Sends accepted without a provider id: ``sent`` at once, the id looked up later.

fakeredis (with Lua) and a listing stub; the same path against the real Redis
and the sandbox over HTTP is in tests/integration/test_documented_answers.py.
"""

from __future__ import annotations

import json

from connectus_worker.domain.hashing import content_digest, content_hash
from connectus_worker.domain.models import Kind, State
from connectus_worker.producers.api import Producer
from connectus_worker.worker.reconcile import Reconciler
from tests.support.clock import Clock
from tests.support.pipeline import KEY, Listings, lookup_of, send_unnamed


def test_an_unnamed_acceptance_is_sent_at_once_and_queued_for_the_lookup(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    assert send_unnamed(producer, clock, Kind.SMS) == "sent"
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id, record.provider_id_lookup) == (
        State.SENT, None, "pending",
    )  # fmt: skip
    assert record.attempts == 1 and record.sent_at is not None
    keys = producer.store.keys
    assert producer.redis.zscore(keys.id_lookups, job_id) == clock.now_ms
    # The lookup keeps the destination and a keyed digest: never the content,
    # nor its plain SHA-256 (which a 6-digit code is recovered from).
    entry = producer.redis.hget(keys.id_lookup_data, job_id).decode()
    assert "56987654321" in entry and content_digest(KEY, "hola") in entry
    assert "hola" not in entry and content_hash("hola") not in entry


def test_an_unnamed_email_is_sent_with_no_listing_to_look_in(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_email("ana@example.com", "s", "<p>x</p>", src_email="c@empresa.cl")
    assert send_unnamed(producer, clock, Kind.EMAIL) == "sent"
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id_lookup) == (State.SENT, "no_listing")
    assert producer.redis.zcard(producer.store.keys.id_lookups) == 0


def test_the_id_is_found_by_destination_and_content_and_indexed(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola")
    send_unnamed(producer, clock, Kind.SMS)
    listings = Listings(sms=[("other", "56987654321", "chao"), ("wrong-dst", "56911111111", "hola"),
                             ("p1", "+56 9 8765 4321", "hola")])  # fmt: skip
    lookup = lookup_of(producer)
    assert lookup.look_up_ids(listings) == {}  # not due before RECONCILE_AFTER_S
    clock.now_ms += 30_000
    assert lookup.look_up_ids(listings) == {"found": 1}
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id, record.provider_id_lookup) == (
        State.SENT, "p1", "found",
    )  # fmt: skip
    assert producer.store.job_for_provider_id("p1") == job_id
    assert producer.redis.zcard(producer.store.keys.id_lookups) == 0
    assert producer.redis.hlen(producer.store.keys.id_lookup_data) == 0


def test_an_otp_is_found_by_the_hash_connectus_stores(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_otp("56987654321", "Tu codigo es 123456")
    send_unnamed(producer, clock, Kind.OTP)
    clock.now_ms += 30_000
    listing = [("p-otp", "56987654321", content_hash("Tu codigo es 123456"))]
    assert lookup_of(producer).look_up_ids(Listings(sms=listing)) == {"found": 1}
    assert producer.get_status(job_id).provider_id == "p-otp"


def test_an_entry_written_before_the_key_is_keyed_when_read(
    producer: Producer, clock: Clock
) -> None:
    # An entry of an older release holds the plain SHA-256 under "sha256".
    job_id = producer.send_otp("56987654321", "Tu codigo es 654321")
    send_unnamed(producer, clock, Kind.OTP)
    keys = producer.store.keys
    legacy = {"kind": "otp", "dst": "56987654321", "sha256": content_hash("Tu codigo es 654321")}
    producer.redis.hset(keys.id_lookup_data, job_id, json.dumps(legacy))
    clock.now_ms += 30_000
    listing = [("p-old", "56987654321", content_hash("Tu codigo es 654321"))]
    assert lookup_of(producer).look_up_ids(Listings(sms=listing)) == {"found": 1}
    assert producer.get_status(job_id).provider_id == "p-old"


def test_an_otp_is_not_matched_under_another_key(producer: Producer, clock: Clock) -> None:
    job_id = producer.send_otp("56987654321", "Tu codigo es 123456")
    send_unnamed(producer, clock, Kind.OTP)
    clock.now_ms += 30_000
    listing = [("p-otp", "56987654321", content_hash("Tu codigo es 123456"))]
    other = Reconciler(
        store=producer.store,
        client={},
        content_key=b"o" * 32,
        after_s=30,
        window_s=300,
        undecidable="review",
        timezone="America/Santiago",
    )
    assert other.look_up_ids(Listings(sms=listing)) == {"waiting": 1}
    assert producer.get_status(job_id).provider_id is None


def test_identical_messages_are_matched_one_to_one(producer: Producer, clock: Clock) -> None:
    first = producer.send_sms("56987654321", "hola")
    second = producer.send_sms("56987654321", "hola")
    taken = producer.send_sms("56987654321", "hola")
    for _ in range(3):
        send_unnamed(producer, clock, Kind.SMS)
    # A record already indexed to another job is never taken again.
    producer.redis.set(producer.store.keys.provider("p0"), taken)
    producer.redis.zrem(producer.store.keys.id_lookups, taken)
    clock.now_ms += 30_000
    listing = [(p, "56987654321", "hola") for p in ("p0", "p1", "p2")]
    assert lookup_of(producer).look_up_ids(Listings(sms=listing)) == {"found": 2}
    ids = {producer.get_status(first).provider_id, producer.get_status(second).provider_id}
    assert ids == {"p1", "p2"}


def test_not_found_waits_then_stays_sent_with_the_id_not_known(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_whatsapp("56987654321", "hola", src_number="56999944837")
    send_unnamed(producer, clock, Kind.WHATSAPP)
    lookup, listings = lookup_of(producer), Listings(whatsapp=[("w1", "56987654321", "otro")])
    clock.now_ms += 30_000
    assert lookup.look_up_ids(listings) == {"waiting": 1}
    assert producer.get_status(job_id).provider_id_lookup == "pending"
    clock.now_ms += 300_000
    assert lookup.look_up_ids(listings) == {"not_found": 1}
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id, record.provider_id_lookup) == (
        State.SENT, None, "not_found",
    )  # fmt: skip
    assert listings.asked[0] == ("whatsapp", ("56999944837", "56987654321"))
    assert producer.redis.zcard(producer.store.keys.id_lookups) == 0


def test_a_failed_listing_leaves_the_job_for_the_next_pass(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola", id_delivery="d-1")
    send_unnamed(producer, clock, Kind.SMS)
    listings = Listings(sms=[("p1", "56987654321", "hola")])
    listings.fail = True
    clock.now_ms += 30_000
    lookup = lookup_of(producer)
    assert lookup.look_up_ids(listings) == {"lookup_failed": 1}
    listings.fail = False
    assert lookup.look_up_ids(listings) == {"found": 1}
    assert listings.asked[-1] == ("sms", "d-1")  # delivery_info when the send named one
    assert producer.get_status(job_id).provider_id == "p1"


def test_a_listing_that_keeps_failing_gives_up_after_the_window(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms("56987654321", "hola", id_delivery="gone")
    send_unnamed(producer, clock, Kind.SMS)
    listings = Listings()
    listings.fail = True
    lookup = lookup_of(producer)
    clock.now_ms += 30_000
    assert lookup.look_up_ids(listings) == {"lookup_failed": 1}
    clock.now_ms += 300_000
    assert lookup.look_up_ids(listings) == {"not_found": 1}
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id_lookup) == (State.SENT, "not_found")
