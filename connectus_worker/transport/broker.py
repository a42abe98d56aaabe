"""Build the Dramatiq broker: one function, used by the CLI, the tests and the workers.

Where Dramatiq has no public hook, the workaround is confined to this module.
No private name of Dramatiq is imported. What this module relies on, and why:

- ``RedisBroker.consumer_class`` is Dramatiq's hook for another consumer; the
  Redis consumer it returns is private, so :class:`_BatchingConsumer` derives
  from the public ``dramatiq.Consumer`` and calls the broker's public
  ``do_nack`` / ``do_requeue`` commands, as Dramatiq's own consumer does.
- The argument layout of Dramatiq's ``dispatch.lua`` (``broker.scripts["dispatch"]``),
  in :meth:`ConnectusBroker.maintain`: Dramatiq runs its maintenance (requeue
  the messages of dead workers) only by chance on its own calls, and this
  consumer makes none; there is no public call to run it.

Dramatiq's fetch cap (``RedisBroker._max_unpack_size``) is not used: the
same value is computed here (:meth:`ConnectusBroker.max_unpack_size`), per
broker, from the public ``maxstack`` script and ``dramatiq_lua_max_stack``.
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
from dramatiq.errors import ActorNotFound, ConnectionClosed, DecodeError
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from connectus_worker.config import Settings
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load

log = structlog.get_logger("connectus_worker.transport.broker")

# ledger/lua/: each file says its KEYS, ARGV and answer.
ACK_AND_FETCH = load(__package__, "ack_and_fetch.lua")
RESYNC = load(__package__, "resync.lua")
QUARANTINE = load(__package__, "quarantine.lua")


class ConnectusBroker(RedisBroker):
    """Dramatiq's Redis broker with a consumer that batches and survives poison payloads.

    - Dramatiq's consumer raises on a payload it cannot decode; the consumer
      thread then restarts and the rest of its prefetched batch is stranded
      in the acks set of a live worker, where maintenance never looks. Here
      the payload is quarantined in the dead-letter set with the reason, and
      the batch goes on.
    - Dramatiq acknowledges each message with its own round trip, from the
      worker thread, and fetches whatever room the prefetch window has (often
      one message). Here worker threads only queue the acknowledgement; the
      consumer thread sends the queued ones together with its next fetch in
      one script (:data:`ACK_AND_FETCH`), and fetches only when an eighth of
      the window is free. See :class:`_BatchingConsumer`.
    - A message naming an actor this worker does not have (a renamed or removed
      actor, a broken producer) fails in Dramatiq's consumer thread and goes to
      Dramatiq's ``<queue>.XQ``, which nothing here reads. With
      :attr:`dead_letter_unknown_actors` set (the worker sets it once every actor
      is declared), it is quarantined like an undecodable payload instead, with
      the reason, so ``connectus dlq list`` shows it.
    - A fetch whose answer is lost (the script ran, then Redis died or the
      connection broke) leaves its messages in this live worker's acks set,
      where Dramatiq's maintenance never looks: lost until the process dies.
      Here the next call of the queue's consumer first requeues every id of
      the acks set that the process does not hold (:data:`RESYNC`). Found by
      the full chaos test (14 of 20,000 left queued after a Redis SIGKILL).
    """

    def __init__(self, *, keys: Keys, **options: Any) -> None:
        super().__init__(namespace=keys.dramatiq_namespace, **options)  # type: ignore[no-untyped-call]
        # Host and pid in the id Dramatiq heartbeats under (``__heartbeats__``): the
        # console's overview lists the live pods and processes from that set alone.
        self.broker_id = f"{socket.gethostname()}:{os.getpid()}:{self.broker_id}"
        self.keys = keys
        self.quarantine_script = self.client.register_script(QUARANTINE)
        self.ack_and_fetch_script = self.client.register_script(ACK_AND_FETCH)
        self.resync_script = self.client.register_script(RESYNC)
        # Per queue, kept here, not in the consumer, because Dramatiq makes a new
        # consumer after a connection error while worker threads still run the
        # old one's messages: acknowledgements not yet sent; the ids handed out
        # and not yet acknowledged; whether a fetch's answer may have been lost.
        self._pending_acks: dict[str, deque[str]] = {}
        self._held: dict[str, set[str]] = {}
        self._resync: set[str] = set()
        self._max_unpack: int | None = None
        #: Off until the worker has declared its actors: a broker without them
        #: (a tool, a test reading a queue) would find every actor unknown.
        self.dead_letter_unknown_actors = False

    @property
    def consumer_class(self) -> type[Consumer]:
        return _BatchingConsumer

    def max_unpack_size(self) -> int:
        """How many values one script call may unpack: half of Lua's stack, as Dramatiq
        caps its fetches (``dramatiq_lua_max_stack``, else asked of Redis once)."""
        if self._max_unpack is None:
            stack = DEFAULT_LUA_MAX_STACK or int(self.scripts["maxstack"]())
            self._max_unpack = stack // 2
        return self._max_unpack

    def maintain(self, queue_name: str) -> None:
        """Requeue the messages of dead workers on ``queue_name``, now.

        Dramatiq's ``dispatch.lua`` runs this maintenance only on a random
        share of its own calls; forced on here ("do_maintenance" = 1) with
        its harmless ``qsize`` command.
        """
        self.scripts["dispatch"](
            keys=[self.namespace],
            args=["qsize", current_millis(), queue_name, self.broker_id, self.heartbeat_timeout,
                  self.dead_message_ttl, 1, self.max_unpack_size()],
        )  # fmt: skip

    def quarantine(self, queue_name: str, data: bytes, reason: str) -> str | None:
        """Move one undecodable payload of this worker's ``queue_name`` to the dead letters."""
        acks = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
        member = self.quarantine_script(
            keys=[acks, self.keys.queue_messages(queue_name), self.keys.dead_letters,
                  self.keys.dead_letter_messages, self.keys.dead_letter_reasons],
            args=[data, epoch_ms(), reason[:500]],
        )  # fmt: skip
        return member.decode() if isinstance(member, bytes) else None

    def pending_acks(self, queue_name: str) -> deque[str]:
        """The acknowledgements of ``queue_name`` waiting for the consumer's next call."""
        return self._pending_acks.setdefault(queue_name, deque())

    def held(self, queue_name: str) -> set[str]:
        """Redis ids of ``queue_name`` handed to this process and not yet acknowledged."""
        return self._held.setdefault(queue_name, set())

    def resync(self, queue_name: str, kept: set[str]) -> int:
        """Requeue what this worker's acks set holds beyond ``kept``; returns how many."""
        ns = self.namespace
        back = self.resync_script(
            keys=[f"{ns}:__acks__.{self.broker_id}.{queue_name}", f"{ns}:{queue_name}",
                  f"{ns}:{queue_name}.msgs"],
            args=sorted(kept),
        )  # fmt: skip
        return int(back)

    def ack_and_fetch(self, queue_name: str, acks: list[str], fetch: int) -> list[bytes | None]:
        """Acknowledge ``acks`` (Redis message ids) and fetch up to ``fetch`` payloads."""
        ns = self.namespace
        return self.ack_and_fetch_script(  # type: ignore[no-any-return]
            keys=[f"{ns}:__heartbeats__", f"{ns}:__acks__.{self.broker_id}.{queue_name}",
                  f"{ns}:{queue_name}", f"{ns}:{queue_name}.msgs"],
            args=[current_millis(), self.broker_id, fetch, *acks],
        )  # fmt: skip


class _BatchingConsumer(Consumer):
    """Dramatiq's Redis consumer, with batched acknowledgements and fetches.

    Called from worker threads, :meth:`ack` only queues the message's id and
    frees its slot in the prefetch window; the consumer thread's next Redis
    call carries every queued id. That call is made when the cache of fetched
    messages is empty and either an eighth of the window is free (then it
    also fetches that room) or acknowledgements have waited ``ACK_DELAY_S``.
    While the window is full and nothing is due, the consumer sleeps
    ``FULL_SLEEP_S`` (no Redis call), not Dramatiq's growing backoff, which
    reaches the worker timeout (1 s) and starved the worker threads. An empty
    queue is polled with Dramatiq's backoff, capped at ``IDLE_MAX_S``, so a
    message on an idle queue (an OTP) waits at most that long to be fetched
    (Dramatiq's unused delay queues keep its cap, the worker timeout).

    A queued acknowledgement that never reaches Redis (a crash) only means
    the message is delivered again; the job ledger makes that a no-op for a
    job already sent. Queued ones are sent on :meth:`close` (worker shutdown).
    """

    FULL_SLEEP_S = 0.005
    ACK_DELAY_S = 0.05
    IDLE_MAX_S = 0.05

    def __init__(self, broker: ConnectusBroker, queue_name: str, prefetch: int, timeout: int):
        self.broker = broker
        self.queue_name = queue_name
        self.prefetch = prefetch
        self.timeout = timeout
        self.message_cache: list[bytes | None] = []
        self.queued_message_ids: set[str] = set()
        self.misses = 0
        # deque.append and popleft are atomic: worker threads append, this thread pops.
        self._acks = broker.pending_acks(queue_name)
        self._held = broker.held(queue_name)
        self._oldest_ack = 0.0
        self._batch = max(1, prefetch // 8)
        # Dramatiq's delay queues (".DQ") are never used here (schedules live in
        # the job ledger): they keep Dramatiq's idle backoff, up to the timeout.
        idle_max_ms = timeout if queue_name.endswith(".DQ") else int(self.IDLE_MAX_S * 1000)
        self._idle_max_ms = min(timeout, idle_max_ms)

    def ack(self, message: MessageProxy) -> None:
        if not self._acks:
            self._oldest_ack = time.monotonic()
        redis_id = message.options["redis_message_id"]
        self._acks.append(redis_id)
        self._held.discard(redis_id)
        self.queued_message_ids.discard(message.message_id)

    @property
    def outstanding_message_count(self) -> int:
        """Messages handed to worker threads or fetched, not yet acknowledged."""
        return len(self.queued_message_ids) + len(self.message_cache)

    def nack(self, message: MessageProxy) -> None:
        redis_id = message.options["redis_message_id"]
        try:
            self.broker.do_nack(self.queue_name, redis_id)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        finally:
            self.queued_message_ids.discard(message.message_id)
            self._held.discard(redis_id)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        ids = [message.options["redis_message_id"] for message in messages]
        if ids:
            self.broker.do_requeue(self.queue_name, *ids)
        self._held.difference_update(ids)

    def close(self) -> None:
        try:
            self._flush(fetch=0)
        except (ConnectionClosed, redis.RedisError) as exc:
            # Kept on the broker: a restarted consumer sends them; if the
            # process ends first, the messages are redelivered (ledger: no-op).
            log.warning("broker.acks_not_flushed", queue=self.queue_name, error=str(exc))
        super().close()

    def __next__(self) -> MessageProxy | None:
        while True:
            while self.message_cache:
                data = self.message_cache.pop(0)
                if data is None:
                    # Its payload is gone (acknowledged elsewhere): nothing to run.
                    continue
                self.misses = 0
                try:
                    message = Message.decode(data)
                except DecodeError as exc:
                    self._quarantine(exc)
                    continue
                if self.broker.dead_letter_unknown_actors and not self._known(message):
                    self._quarantine_unknown(message, data)
                    continue
                self.queued_message_ids.add(message.message_id)
                self._held.add(message.options["redis_message_id"])
                return MessageProxy(message)
            room = self.prefetch - self.outstanding_message_count
            fetch = room if room >= self._batch else 0
            due = bool(self._acks) and time.monotonic() - self._oldest_ack >= self.ACK_DELAY_S
            if fetch or due:
                self.message_cache = self._flush(fetch=fetch)
                if self.message_cache:
                    continue
            if fetch:
                # The queue is empty: back off, as Dramatiq does, up to IDLE_MAX_S.
                self.misses, backoff_ms = compute_backoff(
                    self.misses, max_backoff=self._idle_max_ms
                )
                time.sleep(backoff_ms / 1000)
            else:
                # The window is full: worker threads have work; look again soon.
                time.sleep(self.FULL_SLEEP_S)
            return None

    def _flush(self, *, fetch: int) -> list[bytes | None]:
        acks: list[str] = []
        while True:
            try:
                acks.append(self._acks.popleft())
            except IndexError:
                break
        if not acks and not fetch:
            return []
        try:
            if self.queue_name in self.broker._resync:
                self._recover(acks)
            if fetch:
                # Dramatiq's cap (half Lua's stack); the first call asks Redis.
                fetch = min(fetch, self.broker.max_unpack_size())
            return self.broker.ack_and_fetch(self.queue_name, acks, fetch)
        except redis.RedisError as exc:
            # Put them back: the next call (or close) sends them again.
            self._acks.extendleft(reversed(acks))
            if isinstance(exc, redis.ConnectionError):
                # The call may have run with its answer lost: a fetch's ids
                # would then sit in this worker's acks set, held by no one.
                self.broker._resync.add(self.queue_name)
                raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
            raise

    def _recover(self, acks: list[str]) -> None:
        """After a lost answer: requeue what the acks set holds beyond what this process does.

        Kept: the ids handed out and not acknowledged (worker threads may still
        run them), and the acknowledgements not yet sent (this call sends them).
        """
        kept = self._held.copy() | set(acks) | set(self._acks.copy())
        back = self.broker.resync(self.queue_name, kept)
        self.broker._resync.discard(self.queue_name)
        if back:
            log.warning("broker.orphans_requeued", queue=self.queue_name, count=back)

    def _known(self, message: Message[Any]) -> bool:
        try:
            self.broker.get_actor(message.actor_name)
        except ActorNotFound:
            return False
        return True

    def _quarantine_unknown(self, message: Message[Any], data: bytes) -> None:
        name = str(message.actor_name)[:100]  # untrusted text: bounded
        reason = (
            f"unknown actor {name!r}: no actor of that name in this worker "
            f"(known: {', '.join(sorted(self.broker.get_declared_actors()))})"
        )
        member = self.broker.quarantine(self.queue_name, data, reason)
        log.error("broker.unknown_actor_quarantined", queue=self.queue_name, member=member,
                  actor=name)  # fmt: skip

    def _quarantine(self, exc: DecodeError) -> None:
        data = exc.data if isinstance(exc.data, bytes) else str(exc.data).encode()
        reason = f"undecodable payload: {type(exc.error).__name__}: {exc.error}"
        member = self.broker.quarantine(self.queue_name, data, reason)
        log.error("broker.poison_quarantined", queue=self.queue_name, member=member,
                  reason=reason[:200])  # fmt: skip


def build_broker(
    settings: Settings,
    *,
    client: redis.Redis,
    middleware: Iterable[Middleware] = (),
) -> ConnectusBroker:
    """A Redis broker with every queue of the project declared.

    Dramatiq's default middleware is left out on purpose:

    - ``Retries`` swallows a failed re-enqueue and acks the message anyway,
      so a Redis blip loses the message; durable retries are done by the
      job ledger instead (:meth:`ledger.jobs.JobStore.retry_later`).
    - ``TimeLimit`` raises inside a thread that may be mid-HTTP-send; sends
      are bounded by the client's timeouts and the ledger's lease instead.
    - ``AgeLimit``, ``Callbacks``, ``Pipelines`` are unused.
    """
    broker = ConnectusBroker(
        keys=Keys(settings.key_prefix),
        client=client,
        middleware=list(middleware),
        heartbeat_timeout=int(settings.broker_heartbeat_timeout_s * 1000),
    )
    for queue in settings.queues:
        broker.declare_queue(queue)
    return broker
