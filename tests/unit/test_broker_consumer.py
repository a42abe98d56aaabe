"""The batching consumer (transport/broker.py) on fakeredis with Lua: acks ride with fetches."""

from __future__ import annotations

from typing import Any

import dramatiq
import fakeredis
import pytest
import redis
from dramatiq.broker import MessageProxy
from dramatiq.errors import ConnectionClosed

from connectus_worker.config import load_settings
from connectus_worker.transport.broker import BatchingConsumer, ConnectusBroker, build_broker


class FlakyRedis(fakeredis.FakeRedis):
    """fakeredis that records the commands sent and, while ``down``, fails each
    one as an unreachable Redis does (``redis.ConnectionError``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.down = False
        #: The next command runs, and its answer is lost (Redis killed just after).
        self.lose_next_answer = False
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.down:
            self.commands.append(args)
            raise redis.ConnectionError("Connection refused")
        # Not recorded if it raises NoScriptError: redis-py then loads the
        # script and sends the same EVALSHA again, which is recorded.
        result = super().execute_command(*args, **options)
        self.commands.append(args)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise redis.ConnectionError("Connection closed by server.")
        return result


@pytest.fixture
def client() -> FlakyRedis:
    return FlakyRedis()


@pytest.fixture
def broker(client: FlakyRedis) -> ConnectusBroker:
    settings = load_settings({"KEY_PREFIX": "cwt"})
    return build_broker(settings, client=client)


def _enqueue(broker: ConnectusBroker, n: int, queue: str = "transactional") -> list[str]:
    ids = []
    for i in range(n):
        message = dramatiq.Message(
            queue_name=queue, actor_name="send_sms", args=(), kwargs={"i": i}, options={}
        )
        broker.enqueue(message)
        ids.append(message.message_id)
    return ids


def _consumer(broker: ConnectusBroker, prefetch: int = 8) -> BatchingConsumer:
    consumer = broker.consume("transactional", prefetch=prefetch, timeout=1000)
    assert isinstance(consumer, BatchingConsumer)
    return consumer


def _take(consumer: BatchingConsumer, n: int) -> list[MessageProxy]:
    out: list[MessageProxy] = []
    for _ in range(n * 4):
        message = next(consumer)
        if message is not None:
            out.append(message)
        if len(out) == n:
            break
    return out


def _calls(broker: ConnectusBroker, client: FlakyRedis) -> list[tuple[int, int]]:
    """(acks sent, fetch asked) of every ACK_AND_FETCH round trip the client carried."""
    sha = broker.ack_and_fetch_script.sha
    calls = []
    for command in client.commands:
        if command[:2] == ("EVALSHA", sha):
            argv = command[3 + int(command[2]) :]  # now, worker id, fetch, acks...
            calls.append((len(argv) - 3, int(argv[2])))
    return calls


def test_a_batch_is_fetched_in_one_round_trip_and_acks_ride_on_the_next(
    broker: ConnectusBroker, client: FlakyRedis
) -> None:
    sent = _enqueue(broker, 20)
    consumer = _consumer(broker, prefetch=8)
    first = _take(consumer, 8)
    assert [m.message_id for m in first] == sent[:8]
    assert _calls(broker, client) == [(0, 8)]
    for message in first[:2]:
        consumer.ack(message)  # only queued: no round trip from the worker thread
    assert _calls(broker, client) == [(0, 8)]
    # 2 of 8 free (at least an eighth of the window): one call acks 2 and fetches 2.
    assert next(consumer).message_id == sent[8]  # type: ignore[union-attr]
    assert _calls(broker, client) == [(0, 8), (2, 2)]
    acks = f"{broker.namespace}:__acks__.{broker.broker_id}.transactional"
    msgs = f"{broker.namespace}:transactional.msgs"
    assert broker.client.scard(acks) == 8  # 8 - 2 acked + 2 fetched
    assert broker.client.hlen(msgs) == 18  # the 2 acked payloads are gone


def test_a_full_window_makes_no_round_trip_until_acks_are_due(client: FlakyRedis) -> None:
    settings = load_settings({"KEY_PREFIX": "cwt"})
    broker = build_broker(settings, client=client, full_sleep_s=0.0, ack_delay_s=3600.0)
    _enqueue(broker, 20)
    consumer = _consumer(broker, prefetch=16)
    taken = _take(consumer, 16)
    for _ in range(5):
        assert next(consumer) is None
    assert _calls(broker, client) == [(0, 16)]
    consumer.ack(taken[0])  # 1 of 16 free: less than an eighth, too little to fetch
    assert next(consumer) is None
    assert _calls(broker, client) == [(0, 16)]  # the ack waits (ack_delay_s)


def test_an_ack_past_its_delay_is_sent_alone_while_the_window_is_full(
    client: FlakyRedis,
) -> None:
    settings = load_settings({"KEY_PREFIX": "cwt"})
    broker = build_broker(settings, client=client, full_sleep_s=0.0, ack_delay_s=0.0)
    _enqueue(broker, 20)
    consumer = _consumer(broker, prefetch=16)
    taken = _take(consumer, 16)
    consumer.ack(taken[0])
    assert next(consumer) is None
    assert _calls(broker, client) == [(0, 16), (1, 0)]  # due: sent alone, nothing fetched


def test_close_sends_the_queued_acks(broker: ConnectusBroker) -> None:
    _enqueue(broker, 4)
    consumer = _consumer(broker, prefetch=8)
    taken = _take(consumer, 4)
    for message in taken:
        consumer.ack(message)
    consumer.close()
    acks = f"{broker.namespace}:__acks__.{broker.broker_id}.transactional"
    assert broker.client.scard(acks) == 0
    assert broker.client.hlen(f"{broker.namespace}:transactional.msgs") == 0


def test_acks_survive_a_failed_round_trip_and_a_consumer_restart(
    broker: ConnectusBroker, client: FlakyRedis
) -> None:
    _enqueue(broker, 2)
    consumer = _consumer(broker, prefetch=8)
    taken = _take(consumer, 2)
    for message in taken:
        consumer.ack(message)
    client.down = True
    consumer.close()  # logged, not raised; the acks stay queued on the broker
    assert _calls(broker, client)[-1] == (2, 0)  # the close did try to send them
    client.down = False
    acks = f"{broker.namespace}:__acks__.{broker.broker_id}.transactional"
    assert broker.client.scard(acks) == 2
    _consumer(broker).close()  # a new consumer of the queue sends them
    assert broker.client.scard(acks) == 0


def test_an_acked_message_held_by_another_worker_keeps_its_payload(
    broker: ConnectusBroker,
) -> None:
    # Maintenance gave the message to another worker: our late ack must not delete it.
    _enqueue(broker, 1)
    consumer = _consumer(broker)
    (message,) = _take(consumer, 1)
    acks = f"{broker.namespace}:__acks__.{broker.broker_id}.transactional"
    broker.client.delete(acks)
    consumer.ack(message)
    consumer.close()
    assert broker.client.hlen(f"{broker.namespace}:transactional.msgs") == 1


def test_poison_payloads_are_quarantined_and_the_batch_goes_on(broker: ConnectusBroker) -> None:
    ids = _enqueue(broker, 3)
    msgs = f"{broker.namespace}:transactional.msgs"
    queue_ids = broker.client.lrange(f"{broker.namespace}:transactional", 0, -1)
    broker.client.hset(msgs, queue_ids[1], b"not json")
    consumer = _consumer(broker)
    taken = _take(consumer, 2)
    assert [m.message_id for m in taken] == [ids[0], ids[2]]
    assert broker.client.zcard(broker.keys.dead_letters) == 1


def test_redis_down_on_the_first_fetch_is_a_connection_error_for_dramatiq(
    broker: ConnectusBroker, client: FlakyRedis
) -> None:
    # A worker respawned during a Redis outage: even the fetch cap's first
    # lookup (made once per broker, and this broker is new) fails as
    # ConnectionClosed, which Dramatiq's consumer thread handles as a
    # connection error (restart), not as an unexpected one.
    consumer = _consumer(broker)
    client.down = True
    client.commands.clear()
    with pytest.raises(ConnectionClosed):
        next(consumer)
    # The failed command was that lookup (Dramatiq's "maxstack" script).
    assert client.commands == [("EVALSHA", broker.scripts["maxstack"].sha, 0)]


def test_a_fetch_whose_answer_was_lost_is_requeued_and_what_threads_hold_is_not(
    broker: ConnectusBroker, client: FlakyRedis
) -> None:
    """The chaos test's case: the fetch ran, Redis died before answering. Its ids sat
    in a live worker's acks set, where nothing requeues them: lost for good."""
    sent = _enqueue(broker, 10)
    consumer = _consumer(broker, prefetch=4)
    taken = _take(consumer, 4)  # sent[0:4], held by worker threads
    consumer.ack(taken[0])
    consumer.ack(taken[1])
    client.lose_next_answer = True
    with pytest.raises(ConnectionClosed):
        next(consumer)  # acks 2, fetches sent[4:6] into the acks set: answer lost
    acks = f"{broker.namespace}:__acks__.{broker.broker_id}.transactional"
    assert broker.client.scard(acks) == 4  # sent[2:6]: 2 held, 2 orphaned
    # Dramatiq makes a new consumer after a connection error; its first call puts
    # the orphans back, and fetches them again.
    again = _consumer(broker, prefetch=4)
    refetched = _take(again, 2)
    assert {m.message_id for m in refetched} == set(sent[4:6])
    for message in [*taken[2:], *refetched]:  # the threads finish what they held
        again.ack(message)
    rest = _take(again, 4)
    assert [m.message_id for m in rest] == sent[6:10]
    for message in rest:
        again.ack(message)
    again.close()
    # Nothing held was handed out twice, nothing is left behind.
    assert broker.client.scard(acks) == 0
    assert broker.client.hlen(f"{broker.namespace}:transactional.msgs") == 0
    assert broker.client.llen(f"{broker.namespace}:transactional") == 0


def test_no_resync_without_a_lost_answer(broker: ConnectusBroker, client: FlakyRedis) -> None:
    _enqueue(broker, 3)
    consumer = _consumer(broker, prefetch=8)
    _take(consumer, 3)
    consumer.close()
    assert not [c for c in client.commands if c[:2] == ("EVALSHA", broker.resync_script.sha)]


def test_maintain_requeues_what_a_dead_worker_held(client: FlakyRedis) -> None:
    settings = load_settings({"KEY_PREFIX": "cwt"})
    dead, alive = build_broker(settings, client=client), build_broker(settings, client=client)
    sent = _enqueue(dead, 3)
    held = _take(_consumer(dead), 3)  # in the dead worker's acks set, never acknowledged
    assert [m.message_id for m in held] == sent
    queue = f"{dead.namespace}:transactional"
    assert client.llen(queue) == 0
    alive.maintain("transactional")
    assert client.llen(queue) == 0  # its heartbeat is fresh: not dead yet
    client.zadd(f"{dead.namespace}:__heartbeats__", {dead.broker_id: 0})  # long silent
    alive.maintain("transactional")
    again = _take(_consumer(alive), 3)
    assert sorted(m.message_id for m in again) == sorted(sent)


def test_the_fetch_cap_is_half_the_lua_stack_asked_once(
    broker: ConnectusBroker, client: FlakyRedis
) -> None:
    stack = int(broker.scripts["maxstack"]())
    client.commands.clear()
    assert broker.max_unpack_size() == stack // 2 > 0
    assert len(client.commands) == 1  # asked of Redis...
    assert broker.max_unpack_size() == stack // 2
    assert len(client.commands) == 1  # ...once per broker


def test_an_unknown_actor_is_dead_lettered_with_its_reason_and_the_batch_goes_on(
    broker: ConnectusBroker,
) -> None:
    # issue 21: it went to Dramatiq's .XQ, where `dlq list` never looks.
    dramatiq.actor(lambda **_: None, actor_name="send_sms", broker=broker,
                   queue_name="transactional")  # fmt: skip
    broker.dead_letter_unknown_actors = True
    sms = _enqueue(broker, 1)
    fax = dramatiq.Message(
        queue_name="transactional", actor_name="send_fax", args=(), kwargs={}, options={}
    )
    broker.enqueue(fax)
    sms += _enqueue(broker, 1)
    consumer = _consumer(broker)
    assert [m.message_id for m in _take(consumer, 2)] == sms
    keys = broker.keys
    [member] = [m.decode() for m in broker.client.zrange(keys.dead_letters, 0, -1)]
    reason = broker.client.hget(keys.dead_letter_reasons, member).decode()
    assert reason.startswith("unknown actor 'send_fax': no actor of that name in this worker")
    assert "send_sms" in reason
    stored = dramatiq.Message.decode(broker.client.hget(keys.dead_letter_messages, member))
    assert stored.message_id == fax.message_id
    # Nothing is left of it in the queue's bookkeeping.
    assert broker.client.hlen(f"{broker.namespace}:transactional.msgs") == 2


def test_without_declared_actors_nothing_is_dead_lettered(broker: ConnectusBroker) -> None:
    # A broker of a tool or a test declares no actors: every name would be unknown.
    sent = _enqueue(broker, 2)
    assert [m.message_id for m in _take(_consumer(broker), 2)] == sent
    assert broker.client.zcard(broker.keys.dead_letters) == 0
