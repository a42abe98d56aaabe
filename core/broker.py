"""Build the Dramatiq broker: one function, used by the CLI, the tests and the workers."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from config import Settings
from core.keys import Keys


def build_broker(
    settings: Settings,
    *,
    client: redis.Redis,
    middleware: Iterable[Middleware] = (),
) -> RedisBroker:
    """A Redis broker with every queue of the project declared.

    Dramatiq's default middleware is left out on purpose:

    - ``Retries`` swallows a failed re-enqueue and acks the message anyway,
      so a Redis blip loses the message; durable retries are done by the
      job ledger instead (:meth:`core.jobs.JobStore.retry_later`).
    - ``TimeLimit`` raises inside a thread that may be mid-HTTP-send; sends
      are bounded by the client's timeouts and the ledger's lease instead.
    - ``AgeLimit``, ``Callbacks``, ``Pipelines`` are unused.
    """
    keys = Keys(settings.key_prefix)
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        namespace=keys.dramatiq_namespace,
        middleware=list(middleware),
        heartbeat_timeout=int(settings.broker_heartbeat_timeout_s * 1000),
    )
    for queue in settings.queues:
        broker.declare_queue(queue)
    return broker
