"""The Dramatiq broker: a Redis broker subclass whose consumer batches and survives
poison; the hazards it closes are in :class:`ConnectusBroker`'s docstring.

Only public Dramatiq names: the ``consumer_class`` hook, ``dramatiq.Consumer``, the
broker's ``do_nack`` / ``do_requeue``. :meth:`ConnectusBroker.maintain` relies on the
argument layout of Dramatiq's ``dispatch.lua``: no public call runs its maintenance.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import redis
import structlog
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import DEFAULT_LUA_MAX_STACK, RedisBroker
from dramatiq.common import compute_backoff, current_millis
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from connectus_worker.config import Settings
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load

log = structlog.get_logger("connectus_worker.transport.broker")

# transport/lua/: each file says its KEYS, ARGV and answer.
ACK_AND_FETCH = load(__package__, "ack_and_fetch.lua")
RESYNC = load(__package__, "resync.lua")
QUARANTINE = load(__package__, "quarantine.lua")


class ConnectusBroker(RedisBroker):
    """Dramatiq's Redis broker, with the hazards of its consumer closed:

    - A payload it cannot decode raises in the consumer thread, which restarts and
      strands the rest of its prefetched batch in a live worker's acks set, where
      maintenance never looks. Here the payload is quarantined in the dead-letter
      set with the reason, and the batch goes on.
    - One round trip per acknowledgement, from the worker thread, and fetches of
      whatever room the window has (often one message). Here worker threads only
      queue the acknowledgement; the consumer thread sends the queued ones with its
      next fetch in one script (:data:`ACK_AND_FETCH`), fetching only when an eighth
      of the window is free (:class:`BatchingConsumer`).
    - A message naming an actor this worker lacks goes to Dramatiq's ``<queue>.XQ``,
      which nothing reads. With :attr:`dead_letter_unknown_actors` set (the worker
      sets it once every actor is declared) it is quarantined with the reason.
    - A fetch whose answer is lost (Redis died after the script ran) leaves its
      messages in this live worker's acks set: lost until the process dies. Here the
      queue's next call first requeues every id of that set the process does not
      hold (:data:`RESYNC`; found by the chaos test after a Redis SIGKILL).

    The consumer's pacing, in s: ``full_sleep_s`` between looks while the window is
    full, ``ack_delay_s`` the longest an acknowledgement waits for a fetch to ride
    on, ``idle_max_s`` the cap of the backoff on an empty queue (how long a message
    on an idle queue, an OTP, may wait to be fetched).
    """

    def __init__(
        self,
        *,
        keys: Keys,
        full_sleep_s: float = 0.005,
        ack_delay_s: float = 0.05,
        idle_max_s: float = 0.05,
        **options: Any,
    ) -> None:
        super().__init__(namespace=keys.dramatiq_namespace, **options)  # type: ignore[no-untyped-call]
        # Host and pid in the id Dramatiq heartbeats under: the console lists the
        # live pods and processes from that set alone.
        self.broker_id = f"{socket.gethostname()}:{os.getpid()}:{self.broker_id}"
        self.keys = keys
        self.full_sleep_s, self.ack_delay_s, self.idle_max_s = full_sleep_s, ack_delay_s, idle_max_s
        self.quarantine_script = self.client.register_script(QUARANTINE)
        self.ack_and_fetch_script = self.client.register_script(ACK_AND_FETCH)
        self.resync_script = self.client.register_script(RESYNC)
        # Per queue, here and not in the consumer: Dramatiq makes a new consumer after
        # a connection error while worker threads still run the old one's messages.
        # Acknowledgements not yet sent; ids handed out and not yet acknowledged;
        # queues whose last fetch's answer may have been lost.
        self.pending_acks: dict[str, deque[str]] = {}
        self.held: dict[str, set[str]] = {}
        self.resync_due: set[str] = set()
        self._max_unpack: int | None = None
        #: Off until the worker has declared its actors: a broker without them
        #: (a tool, a test reading a queue) would find every actor unknown.
        self.dead_letter_unknown_actors = False

    @property
    def consumer_class(self) -> type[Consumer]:
        return BatchingConsumer

    def max_unpack_size(self) -> int:
        """How many values one script call may unpack: half of Lua's stack, as Dramatiq
        caps its fetches (``dramatiq_lua_max_stack``, else asked of Redis once)."""
        if self._max_unpack is None:
            stack = DEFAULT_LUA_MAX_STACK or int(self.scripts["maxstack"]())
            self._max_unpack = stack // 2
        return self._max_unpack

    def maintain(self, queue_name: str) -> None:
        """Requeue the messages of dead workers on ``queue_name``, now: ``dispatch.lua``
        runs it only on a random share of calls; forced here ("do_maintenance" = 1)
        with its harmless ``qsize`` command."""
        self.scripts["dispatch"](
            keys=[self.namespace],
            args=["qsize", current_millis(), queue_name, self.broker_id, self.heartbeat_timeout,
                  self.dead_message_ttl, 1, self.max_unpack_size()],
        )  # fmt: skip

    def _queue_keys(self, queue_name: str) -> list[str]:
        """This worker's acks set of ``queue_name``, the queue, its payloads."""
        ns = self.namespace
        acks = f"{ns}:__acks__.{self.broker_id}.{queue_name}"
        return [acks, f"{ns}:{queue_name}", f"{ns}:{queue_name}.msgs"]

    def quarantine(self, queue_name: str, data: bytes, reason: str) -> str | None:
        """Move one undecodable payload of this worker's ``queue_name`` to the dead letters."""
        acks, _, msgs = self._queue_keys(queue_name)
        k = self.keys
        member = self.quarantine_script(
            keys=[acks, msgs, k.dead_letters, k.dead_letter_messages, k.dead_letter_reasons],
            args=[data, epoch_ms(), reason[:500]],
        )
        return member.decode() if isinstance(member, bytes) else None

    def resync(self, queue_name: str, kept: set[str]) -> int:
        """Requeue what this worker's acks set holds beyond ``kept``; returns how many."""
        return int(self.resync_script(keys=self._queue_keys(queue_name), args=sorted(kept)))

    def ack_and_fetch(self, queue_name: str, acks: list[str], fetch: int) -> list[bytes | None]:
        """Acknowledge ``acks`` (Redis message ids) and fetch up to ``fetch`` payloads."""
        return self.ack_and_fetch_script(  # type: ignore[no-any-return]
            keys=[f"{self.namespace}:__heartbeats__", *self._queue_keys(queue_name)],
            args=[current_millis(), self.broker_id, fetch, *acks],
        )


class BatchingConsumer(Consumer):
    """Dramatiq's Redis consumer, with batched acknowledgements and fetches.

    :meth:`ack` (worker threads) only queues the id. The consumer thread calls Redis
    when its cache is empty and either an eighth of the window is free or
    acknowledgements have waited ``ack_delay_s``. A full window sleeps
    ``full_sleep_s``, not Dramatiq's growing backoff (which reached the worker timeout
    and starved the threads). An acknowledgement lost in a crash only means the
    message is delivered again; the job ledger makes that a no-op.
    """

    def __init__(self, broker: ConnectusBroker, queue_name: str, prefetch: int, timeout: int):
        self.broker = broker
        self.queue_name = queue_name
        self.prefetch = prefetch
        self.timeout = timeout
        self.message_cache: list[bytes | None] = []
        self.queued_message_ids: set[str] = set()
        self.misses = 0
        # deque.append and popleft are atomic: worker threads append, this thread pops.
        self.acks = broker.pending_acks.setdefault(queue_name, deque())
        self.held = broker.held.setdefault(queue_name, set())
        self.oldest_ack = 0.0
        self.batch = max(1, prefetch // 8)
        # Dramatiq's delay queues (".DQ") are unused (schedules live in the job
        # ledger): they keep Dramatiq's idle backoff, up to the timeout.
        idle_ms = timeout if queue_name.endswith(".DQ") else int(broker.idle_max_s * 1000)
        self.idle_max_ms = min(timeout, idle_ms)

    def ack(self, message: MessageProxy) -> None:
        if not self.acks:
            self.oldest_ack = time.monotonic()
        redis_id = message.options["redis_message_id"]
        self.acks.append(redis_id)
        self.held.discard(redis_id)
        self.queued_message_ids.discard(message.message_id)

    def nack(self, message: MessageProxy) -> None:
        redis_id = message.options["redis_message_id"]
        try:
            self.broker.do_nack(self.queue_name, redis_id)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        finally:
            self.queued_message_ids.discard(message.message_id)
            self.held.discard(redis_id)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        ids = [message.options["redis_message_id"] for message in messages]
        if ids:
            self.broker.do_requeue(self.queue_name, *ids)
        self.held.difference_update(ids)

    def close(self) -> None:
        try:
            self._flush(fetch=0)
        except (ConnectionClosed, redis.RedisError) as exc:
            # Kept on the broker: a restarted consumer sends them; if the process
            # ends first, the messages are redelivered (ledger: no-op).
            log.warning("broker.acks_not_flushed", queue=self.queue_name, error=str(exc))
        super().close()

    def __next__(self) -> MessageProxy | None:
        while True:
            while self.message_cache:
                data = self.message_cache.pop(0)
                if data is None:
                    continue  # its payload is gone (acknowledged elsewhere)
                self.misses = 0
                try:
                    message = Message.decode(data)
                except DecodeError as exc:
                    raw = exc.data if isinstance(exc.data, bytes) else str(exc.data).encode()
                    reason = f"undecodable payload: {type(exc.error).__name__}: {exc.error}"
                    member = self.broker.quarantine(self.queue_name, raw, reason)
                    log.error("broker.poison_quarantined", queue=self.queue_name,
                              member=member, reason=reason[:200])  # fmt: skip
                    continue
                unknown = message.actor_name not in self.broker.actors
                if unknown and self.broker.dead_letter_unknown_actors:
                    self._quarantine_unknown(message, data)
                    continue
                self.queued_message_ids.add(message.message_id)
                self.held.add(message.options["redis_message_id"])
                return MessageProxy(message)
            # The cache is empty: the window holds the messages handed to worker threads.
            room = self.prefetch - len(self.queued_message_ids)
            fetch = room if room >= self.batch else 0
            due = bool(self.acks) and time.monotonic() - self.oldest_ack >= self.broker.ack_delay_s
            if fetch or due:
                self.message_cache = self._flush(fetch=fetch)
                if self.message_cache:
                    continue
            if fetch:  # the queue is empty: back off, as Dramatiq does, up to idle_max_s
                self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.idle_max_ms)
                time.sleep(backoff_ms / 1000)
            else:  # the window is full: worker threads have work; look again soon
                time.sleep(self.broker.full_sleep_s)
            return None

    def _flush(self, *, fetch: int) -> list[bytes | None]:
        acks: list[str] = []
        while True:  # not `while self.acks`: an old consumer's close may pop too
            try:
                acks.append(self.acks.popleft())
            except IndexError:
                break
        if not acks and not fetch:
            return []
        try:
            if self.queue_name in self.broker.resync_due:
                self._recover(acks)
            if fetch:
                fetch = min(fetch, self.broker.max_unpack_size())
            return self.broker.ack_and_fetch(self.queue_name, acks, fetch)
        except redis.RedisError as exc:
            self.acks.extendleft(reversed(acks))  # the next call (or close) sends them
            if isinstance(exc, redis.ConnectionError):
                # The call may have run with its answer lost: a fetch's ids would
                # then sit in this worker's acks set, held by no one.
                self.broker.resync_due.add(self.queue_name)
                raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
            raise

    def _recover(self, acks: list[str]) -> None:
        """After a lost answer: requeue what the acks set holds beyond the ids handed
        out (threads may still run them) and the acknowledgements not yet sent."""
        back = self.broker.resync(self.queue_name, self.held.copy() | set(acks) | set(self.acks))
        self.broker.resync_due.discard(self.queue_name)
        if back:
            log.warning("broker.orphans_requeued", queue=self.queue_name, count=back)

    def _quarantine_unknown(self, message: Message[Any], data: bytes) -> None:
        name = str(message.actor_name)[:100]  # untrusted text: bounded
        reason = (
            f"unknown actor {name!r}: no actor of that name in this worker "
            f"(known: {', '.join(sorted(self.broker.actors))})"
        )
        member = self.broker.quarantine(self.queue_name, data, reason)
        log.error("broker.unknown_actor_quarantined", queue=self.queue_name, member=member,
                  actor=name)  # fmt: skip


def build_broker(
    settings: Settings, *, client: redis.Redis, middleware: Iterable[Middleware] = (),
    **pacing: float,
) -> ConnectusBroker:  # fmt: skip
    """A Redis broker with every queue of the project declared; ``pacing``: the
    consumer's (:class:`ConnectusBroker`).

    Dramatiq's default middleware is left out on purpose: ``Retries`` swallows a
    failed re-enqueue and acks anyway (a Redis blip loses the message; the job
    ledger retries instead, :meth:`ledger.jobs.JobStore.finish`);
    ``TimeLimit`` raises inside a thread that may be mid-send (the client's
    timeouts and the lease bound a send); ``AgeLimit``, ``Callbacks``,
    ``Pipelines`` are unused.
    """
    broker = ConnectusBroker(
        keys=Keys(settings.key_prefix),
        client=client,
        middleware=list(middleware),
        heartbeat_timeout=int(settings.broker_heartbeat_timeout_s * 1000),
        **pacing,
    )
    for queue in settings.queues:
        broker.declare_queue(queue)
    return broker
