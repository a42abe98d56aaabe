"""Build the Dramatiq broker: one function, used by the CLI, the tests and the workers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import DecodeError
from dramatiq.middleware import Middleware

from config import Settings
from core import scripts
from core.jobs import epoch_ms
from core.keys import Keys

log = structlog.get_logger("core.broker")


class ConnectusBroker(RedisBroker):
    """Dramatiq's Redis broker with a consumer that survives poison payloads.

    Dramatiq's consumer raises on a payload it cannot decode; the consumer
    thread then restarts and the rest of its prefetched batch is stranded in
    the acks set of a live worker, where maintenance never looks. Here the
    payload is quarantined in the dead-letter set with the reason, and the
    batch goes on.
    """

    def __init__(self, *, keys: Keys, **options: Any) -> None:
        super().__init__(namespace=keys.dramatiq_namespace, **options)  # type: ignore[no-untyped-call]
        self.keys = keys
        self.quarantine_script = self.client.register_script(scripts.QUARANTINE)

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _SafeConsumer

    def quarantine(self, queue_name: str, data: bytes, reason: str) -> str | None:
        """Move one undecodable payload of this worker's ``queue_name`` to the dead letters."""
        acks = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
        member = self.quarantine_script(
            keys=[acks, self.keys.queue_messages(queue_name), self.keys.dead_letters,
                  self.keys.dead_letter_messages, self.keys.dead_letter_reasons],
            args=[data, epoch_ms(), reason[:500]],
        )  # fmt: skip
        return member.decode() if isinstance(member, bytes) else None


class _SafeConsumer(_RedisConsumer):
    def __next__(self) -> MessageProxy | None:
        while True:
            try:
                return super().__next__()  # type: ignore[no-untyped-call,no-any-return]
            except DecodeError as exc:
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
      job ledger instead (:meth:`core.jobs.JobStore.retry_later`).
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
