"""The sets beside the ledger: unknown and in-review jobs, and dead letters.

Methods of :class:`ledger.jobs.JobStore` that move no job along the send path
but keep, find and settle what it could not finish: the message of a job whose
outcome is ambiguous, the reconciler's list of unknown jobs and its verdicts
(:meth:`JobRecovery.resolve`), a quarantined malformed message, a replayed
dead letter. A mixin: split from :mod:`ledger.jobs` (size guideline), which registers
the scripts these run.

Clock: ``clock`` returns epoch milliseconds and is injected for tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import redis
from dramatiq import Message
from redis.commands.core import Script

from connectus_worker.ledger.job_messages import renew_message
from connectus_worker.ledger.keys import Keys
from connectus_worker.redis import text


class JobRecovery:
    """The unknown, review and dead-letter paths of :class:`ledger.jobs.JobStore`
    (its attributes)."""

    client: redis.Redis
    keys: Keys
    ttl_s: int
    clock: Callable[[], int]
    _resolve: Script
    _replay: Script

    def quarantine(self, data: bytes, reason: str) -> str:
        """Keep a malformed message in the dead-letter set with its reason; returns its member."""
        member = f"malformed:{uuid.uuid4().hex}"
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(self.keys.dead_letters, {member: self.clock()})
        pipe.hset(self.keys.dead_letter_messages, member, data)
        pipe.hset(self.keys.dead_letter_reasons, member, reason[:500])
        pipe.execute()
        return member

    def hold_message(self, job_id: str, message: Message[Any]) -> None:
        """Keep a message of a job that became ``unknown`` by lease expiry."""
        self.client.hsetnx(self.keys.unknown_messages, job_id, message.encode())

    def unknown_since(self, *, older_than_ms: int, limit: int) -> list[tuple[str, int]]:
        """Unknown jobs that became so at least ``older_than_ms`` ago, oldest first."""
        rows: list[tuple[bytes, float]] = self.client.zrangebyscore(  # type: ignore[assignment]
            self.keys.unknown, "-inf", self.clock() - older_than_ms, start=0, num=limit,
            withscores=True,
        )  # fmt: skip
        return [(text(job_id), int(score)) for job_id, score in rows]

    def held_message(self, job_id: str, *, review: bool = False) -> Message[Any] | None:
        """The kept message of an unknown (or in-review) job."""
        key = self.keys.review_messages if review else self.keys.unknown_messages
        data = self.client.hget(key, job_id)
        if data is None:
            return None
        return Message.decode(data if isinstance(data, bytes) else data.encode())

    def resolve(
        self, job_id: str, mode: str, *, review: bool = False, provider_id: str = "",
        message: Message[Any] | None = None, error_class: str = "", reason: str = "",
    ) -> bool:  # fmt: skip
        """Settle an ``unknown`` job: ``sent`` (found at Connectus), ``requeue`` (not
        found: send again), ``review`` (undecidable: hold for an operator) or
        ``fail``. Atomic and a no-op unless the job is still ``unknown``."""
        source = (self.keys.review, self.keys.review_messages) if review else (
            self.keys.unknown, self.keys.unknown_messages)  # fmt: skip
        target_a, target_b = "", ""
        extra: list[str | int | bytes] = []
        if mode == "sent":
            target_a, extra = self.keys.provider(provider_id), [provider_id, self.ttl_s]
        elif mode == "requeue":
            assert message is not None
            fresh = renew_message(message)
            target_a = self.keys.queue(fresh.queue_name)
            target_b = self.keys.queue_messages(fresh.queue_name)
            extra = [fresh.options["redis_message_id"], fresh.encode()]
        elif mode == "review":
            extra = [message.encode() if message is not None else b""]
        else:
            extra = [error_class, reason[:500]]
        keys = [self.keys.job(job_id), *source, self.keys.review, self.keys.review_messages,
                target_a, target_b]  # fmt: skip
        return bool(self._resolve(keys=keys, args=[job_id, self.clock(), mode, *extra]))

    def replay(self, job_id: str) -> str:
        """Put a dead-lettered job back on its queue, same id and idempotency key."""
        data = self.client.hget(self.keys.dead_letter_messages, job_id)
        if data is None:
            return "missing"
        message = renew_message(Message.decode(data if isinstance(data, bytes) else data.encode()))
        answer = self._replay(
            keys=[
                self.keys.job(job_id),
                self.keys.dead_letters,
                self.keys.dead_letter_messages,
                self.keys.queue(message.queue_name),
                self.keys.queue_messages(message.queue_name),
            ],
            args=[job_id, self.clock(), message.options["redis_message_id"], message.encode()],
        )
        return str(answer[0].decode())
