"""Confirm a write before acting on it: on replicas (``WAIT``) or in the local AOF (``WAITAOF``).

A send claim lost in a failover (or a host crash under ``appendfsync everysec``)
lets another worker send the job again, so a send follows a confirmed claim, and a
producer returns a job id after a confirmed enqueue (docs/reliability.md). ``WAIT``
and ``WAITAOF`` count the calling *connection's* writes, so write and wait go in one
pipeline: one connection, one round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from redis.client import Pipeline

from connectus_worker.config import Settings

log = structlog.get_logger("connectus_worker.durability")


class NotDurable(redis.ConnectionError):
    """Writes that landed on the primary but were not confirmed within the timeout.

    A ConnectionError: such a primary is an outage. The worker's ledger retries the
    same idempotent write until confirmed; producers fail (HTTP 503).
    """


@dataclass
class Durability:
    """``min_replicas`` > 0: ``WAIT min_replicas timeout_ms``. 0: ``WAITAOF 1 0
    timeout_ms`` while the server has it (Redis >= 7.2 with ``appendonly yes``);
    where it has not, nothing is added and the deployment relies on
    ``appendfsync always`` (the deploy files). ``timeout_ms`` > 0: never block forever."""

    min_replicas: int = 0
    timeout_ms: int = 1000
    #: False once the server refused WAITAOF (Redis < 7.2, or no AOF), or for tools.
    waitaof: bool = field(default=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Durability:
        return cls(settings.redis_min_replicas, settings.redis_wait_timeout_ms)

    @property
    def confirms(self) -> bool:
        """Whether :meth:`run` adds a wait (else it is a plain pipeline)."""
        return self.min_replicas > 0 or self.waitaof

    def run(self, client: redis.Redis, write: Callable[[Pipeline], object]) -> list[Any]:
        """The answers of the commands ``write`` queues on a pipeline, once confirmed;
        :class:`NotDurable` if not within ``timeout_ms``. The writes must be idempotent:
        the caller repeats them after NotDurable."""
        pipe = client.pipeline(transaction=False)
        write(pipe)
        if self.min_replicas > 0:
            pipe.wait(self.min_replicas, self.timeout_ms)
        elif self.waitaof:
            pipe.waitaof(1, 0, self.timeout_ms)
        else:
            return pipe.execute()
        *answers, waited = pipe.execute(raise_on_error=False)
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        if isinstance(waited, redis.ResponseError) and self.min_replicas == 0:
            # Redis < 7.2 or no AOF: the writes ran, and the deploy files'
            # appendfsync always is what makes them durable (expected: INFO).
            self.waitaof = False
            log.info("durability.no_waitaof", error=str(waited)[:200])
            return answers
        if isinstance(waited, Exception):
            raise waited
        acked = int(waited) if self.min_replicas > 0 else int(waited[0])
        if acked < max(self.min_replicas, 1):
            what = f"{self.min_replicas} replicas" if self.min_replicas else "the local AOF"
            raise NotDurable(f"not confirmed by {what} within {self.timeout_ms} ms ({acked})")
        return answers


#: No confirmation: for tools and tests that build a store by hand.
UNCONFIRMED = Durability(waitaof=False)
