"""Poison payloads: an undecodable or malformed message is dead-lettered with a reason,
and the worker, and the rest of its prefetched batch, carry on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import dramatiq

from connectus_worker.domain.models import State
from connectus_worker.ledger.deadletters import DeadLetters, Filter
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.stack_checks import NUMBER, settle
from tests.support.waiting import wait_for


def _push_raw(producer: Producer, queue: str, data: bytes) -> None:
    """Put raw bytes on a queue in Dramatiq's Redis layout, as a broken producer would."""
    keys: Keys = producer.store.keys
    rid = str(uuid.uuid4())
    producer.redis.hset(keys.queue_messages(queue), rid, data)
    producer.redis.rpush(keys.queue(queue), rid)


def test_poison_payloads_are_dead_lettered_and_the_batch_goes_on(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(start_workers=False)
    producer = Producer(stack.settings)
    good = [producer.send_sms(NUMBER, f"antes {i}") for i in range(5)]
    _push_raw(producer, "transactional", b"\xff\xfe not json at all")
    wrong_shape = dramatiq.Message(
        queue_name="transactional", actor_name="send_sms", args=("x",), kwargs={},
        options={"redis_message_id": str(uuid.uuid4())},
    )  # fmt: skip
    producer.redis.hset(producer.store.keys.queue_messages("transactional"),
                        wrong_shape.options["redis_message_id"], wrong_shape.encode())  # fmt: skip
    producer.redis.rpush(
        producer.store.keys.queue("transactional"), wrong_shape.options["redis_message_id"]
    )
    # issue 21: a message for an actor no worker has went to Dramatiq's .XQ, unseen.
    unknown = dramatiq.Message(
        queue_name="transactional", actor_name="send_fax", args=(), kwargs={},
        options={"redis_message_id": str(uuid.uuid4())},
    )  # fmt: skip
    producer.redis.hset(producer.store.keys.queue_messages("transactional"),
                        unknown.options["redis_message_id"], unknown.encode())  # fmt: skip
    producer.redis.rpush(
        producer.store.keys.queue("transactional"), unknown.options["redis_message_id"]
    )
    good += [producer.send_sms(NUMBER, f"despues {i}") for i in range(5)]
    stack.start_worker_supervisor()

    records = settle(producer, good)
    assert {r.state for r in records.values()} == {State.SENT}
    keys = producer.store.keys
    members = {m.decode() for m in producer.redis.zrange(keys.dead_letters, 0, -1)}
    poison = [m for m in members if m.startswith("poison:")]
    malformed = [m for m in members if m.startswith("malformed:")]
    assert len(poison) == 2 and len(malformed) == 1
    reasons = {m: producer.redis.hget(keys.dead_letter_reasons, m) for m in poison}
    [unknown_member] = [m for m, r in reasons.items() if b"unknown actor 'send_fax'" in r]
    assert any(b"undecodable payload" in r for r in reasons.values())
    assert producer.redis.hget(keys.dead_letter_messages, unknown_member) == unknown.encode()
    # Not in Dramatiq's own dead-letter queue, which `dlq list` never reads.
    assert producer.redis.zcard(f"{keys.dramatiq_namespace}:transactional.XQ") == 0
    # What `connectus dlq list --reason "unknown actor"` shows.
    [listed] = DeadLetters(producer.store).find(Filter(reason="unknown actor"))
    assert listed.member == unknown_member and not listed.replayable[0]
    assert b"keyword argument" in producer.redis.hget(keys.dead_letter_reasons, malformed[0])
    # Nothing is left behind unacked: the queue's message hash empties. Acks are
    # batched and ride on the consumer's next call (within ~0.15 s): await that.
    wait_for(
        lambda: producer.redis.hlen(keys.queue_messages("transactional")) == 0,
        timeout_s=5,
        what="the batched acks to empty the queue's message hash",
    )
    stored = json.loads(producer.redis.hget(keys.dead_letter_messages, malformed[0]))
    assert stored["actor"] == "send_sms"
