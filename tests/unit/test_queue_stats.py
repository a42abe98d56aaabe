"""ledger.queue_stats on fakeredis: depth and the oldest waiting message's age per queue."""

from __future__ import annotations

import fakeredis

from connectus_worker.config import load_settings
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.queue_stats import queue_stats
from connectus_worker.producers.api import Producer

SETTINGS = load_settings({})
KEYS = Keys(SETTINGS.key_prefix)


def test_depth_and_oldest_age_per_queue() -> None:
    client = fakeredis.FakeRedis()
    producer = Producer(SETTINGS, redis_client=client)
    sent_ms = epoch_ms()
    for text in ("a", "b", "c"):
        producer.send_sms("56987654321", text)
    queue = SETTINGS.queue_transactional
    # Dramatiq stamps a message when it is built (wall clock): the head is the oldest.
    stats = queue_stats(client, KEYS, [queue, "empty"], now_ms=sent_ms + 20_000)
    assert [(s.queue, s.depth) for s in stats] == [(queue, 3), ("empty", 0)]
    age = stats[0].oldest_age_s
    assert age is not None and 15.0 <= age <= 20.0
    assert stats[1].oldest_age_s is None


def test_a_head_without_a_readable_message_has_no_age() -> None:
    client = fakeredis.FakeRedis()
    client.rpush(KEYS.queue("q1"), "m1")
    client.rpush(KEYS.queue("q2"), "m2")
    client.hset(KEYS.queue_messages("q2"), "m2", b"not json")
    client.rpush(KEYS.queue("q3"), "m3")
    client.hset(KEYS.queue_messages("q3"), "m3", b'{"message_timestamp": 1000}')
    stats = queue_stats(client, KEYS, ["q1", "q2", "q3"], now_ms=4000)
    assert [(s.depth, s.oldest_age_s) for s in stats] == [(1, None), (1, None), (1, 3.0)]
