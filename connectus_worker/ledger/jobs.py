"""The job store: job records, the idempotency index and the per-job ledger.

One Redis hash per job (``{prefix}:job:{id}``) is both the record that
``get_status`` reads and the state machine the worker drives (states: see
:mod:`domain.models`). Every transition is one Lua script (``ledger/lua/*.lua``):
atomic, one round trip. Times are epoch milliseconds (``clock``, injected).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
from dramatiq import Message
from redis.client import Pipeline

from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.models import JobRecord
from connectus_worker.durability import UNCONFIRMED, Durability
from connectus_worker.ledger.claims import Claim, claimed
from connectus_worker.ledger.job_messages import renew_message
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load
from connectus_worker.redis import text

# The ledger's transitions (ledger/lua/: each file says its KEYS, ARGV and answer).
ENQUEUE = load(__package__, "enqueue.lua")
CLAIM = load(__package__, "claim.lua")
FINISH = load(__package__, "finish.lua")
PROMOTE = load(__package__, "promote.lua")
CANCEL = load(__package__, "cancel.lua")
REPLAY = load(__package__, "replay.lua")
RESOLVE = load(__package__, "resolve.lua")
SWEEP = load(__package__, "sweep.lua")


def epoch_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class IdempotencyConflict(ValueError):
    """The idempotency key is already used by a job with a different payload."""

    def __init__(self, key: str, job_id: str) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(f"idempotency_key: already used by job {job_id} with a different payload")


#: What ``finish.lua`` keeps of a finished job (:class:`Finish`).
FinishMode = Literal["done", "dead", "unknown", "retry", "lookup"]


@dataclass(frozen=True, slots=True)
class Finish:
    """One job's fenced outcome (``finish.lua``): its record's new ``fields`` and, by
    ``mode``, what is kept of it: ``done`` nothing; ``dead`` ``message`` in the dead
    letters (replayable); ``unknown`` ``message`` in the unknown set, to resend if
    reconciliation finds that Connectus never got it; ``retry`` ``message``, renewed,
    in the schedule, due at ``due_ms`` (epoch ms); ``lookup`` (a ``sent`` answer that
    named no message) ``lookup`` in the provider-id lookups, what it matches on
    (:mod:`worker.id_lookup`)."""

    job_id: str
    fence: int
    mode: FinishMode
    fields: Mapping[str, str | int]
    message: Message[Any] | None = None
    due_ms: int = 0
    lookup: bytes = b""

    def call(
        self, keys: Keys, *, ttl_s: int, now_ms: int
    ) -> tuple[list[str], list[str | int | bytes]]:
        """KEYS and ARGV of ``finish.lua``."""
        zset, hash_ = {
            "dead": (keys.dead_letters, keys.dead_letter_messages),
            "done": (keys.dead_letters, keys.dead_letter_messages),
            "retry": (keys.schedule, keys.schedule_messages),
            "unknown": (keys.unknown, keys.unknown_messages),
            "lookup": (keys.id_lookups, keys.id_lookup_data),
        }[self.mode]
        message = self.message
        if message is not None and self.mode == "retry":
            message = renew_message(message)
        data = self.lookup if message is None else message.encode()
        provider_id = self.fields.get("provider_id")
        index = keys.provider(str(provider_id)) if provider_id else ""
        score = self.due_ms if self.mode == "retry" else now_ms
        args: list[str | int | bytes] = [self.fence, self.mode, score, self.job_id, data, ttl_s]
        for name, value in {**self.fields, "updated_at": now_ms}.items():
            args += [name, value]
        job = keys.job(self.job_id)
        return [job, zset, hash_, index, keys.leases, keys.inflight_messages], args


class JobStore:
    """Records and ledger transitions for jobs, on one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl_s: int,
        clock: Callable[[], int] = epoch_ms,
        durability: Durability = UNCONFIRMED,
    ) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s
        self.clock = clock
        # Enqueues, claims and deferrals are confirmed before they are acted on;
        # each is idempotent, so NotDurable is retried as is.
        self.durability = durability
        self._enqueue = client.register_script(ENQUEUE)
        self._claim = client.register_script(CLAIM)
        self._finish = client.register_script(FINISH)
        self._promote = client.register_script(PROMOTE)
        self._cancel = client.register_script(CANCEL)
        self._replay = client.register_script(REPLAY)
        self._resolve = client.register_script(RESOLVE)
        self._sweep = client.register_script(SWEEP)

    # -- producers -----------------------------------------------------------

    def enqueue(
        self,
        *,
        job_id: str,
        idempotency_key: str | None,
        fingerprint: str,
        message: Message[Any],
        record: Mapping[str, str | int],
        due_ms: int | None = None,
        tenant: str = DEFAULT_TENANT,
        index_keys: Sequence[str] = (),
        watch_ms: int | None = None,
    ) -> str:
        """Create the record and enqueue (or schedule, if ``due_ms`` is later) atomically.

        ``idempotency_key`` is ``tenant``'s (None: the job's own, in a namespace no
        caller's key reaches). Raises :class:`IdempotencyConflict` when the key is
        taken by a different payload; returns the first job's id when it is the same.
        ``index_keys``: the search indexes that list the job
        (:func:`ledger.lookup.index_keys`). ``watch_ms``: a new job's first status
        lookup (:mod:`ledger.status_watch`); None = not watched.
        """
        now = self.clock()
        scheduled = due_ms is not None and due_ms > now
        fields = {**record, "tenant": tenant, "state": "scheduled" if scheduled else "queued"}
        fields.setdefault("created_at", now)
        fields.setdefault("updated_at", now)
        args: list[str | int] = [
            job_id,
            fingerprint,
            self.ttl_s,
            "schedule" if scheduled else "queue",
            due_ms or 0,
            message.options["redis_message_id"],
            message.encode(),  # type: ignore[list-item]
            self.keys.prefix,
            "" if watch_ms is None else watch_ms,
        ]
        for name, value in fields.items():
            args += [name, value]
        k = self.keys
        keys = [
            k.idempotency(idempotency_key, tenant) if idempotency_key is not None
            else k.automatic_idempotency(job_id),
            k.job(job_id), k.queue(message.queue_name), k.queue_messages(message.queue_name),
            k.schedule, k.schedule_messages, k.status_watch, *index_keys,
        ]  # fmt: skip
        run = self.durability.run
        ((status, existing),) = run(
            self.client, lambda pipe: self._enqueue(client=pipe, keys=keys, args=args)
        )
        if status == b"conflict":
            raise IdempotencyConflict(str(idempotency_key), existing.decode())
        return str(existing.decode())

    def get(self, job_id: str) -> JobRecord | None:
        raw = self.client.hgetall(self.keys.job(job_id))
        return JobRecord.from_redis(raw) if raw else None

    def cancel(self, job_id: str) -> str:
        """Cancel a job not yet sending: ``cancelled``, ``refused:<state>`` or ``missing``."""
        answer = self._cancel(
            keys=[self.keys.job(job_id), self.keys.schedule, self.keys.schedule_messages],
            args=[job_id, self.clock()],
        )
        status = answer[0].decode()
        return f"refused:{answer[1].decode()}" if status == "refused" else status

    # -- workers ---------------------------------------------------------------

    def claim(
        self,
        job_id: str,
        *,
        worker_id: str,
        lease_ms: int,
        token: str = "",
        message: Message[Any] | None = None,
    ) -> Claim:
        """Take the send lease (``sending``) before the HTTP call.

        ``token`` identifies this delivery: claiming again with it (after a lost
        answer) returns the same lease. ``message`` is kept while the job is in
        flight, so that a job whose worker is lost can be reconciled.
        """
        keys, args = self.claim_call(
            job_id, worker_id=worker_id, lease_ms=lease_ms, token=token, message=message
        )
        run = self.durability.run
        return claimed(run(self.client, lambda p: self._claim(keys=keys, args=args, client=p))[0])

    def claim_call(
        self,
        job_id: str,
        *,
        worker_id: str,
        lease_ms: int,
        token: str = "",
        message: Message[Any] | None = None,
    ) -> tuple[list[str], list[str | int | bytes]]:
        """KEYS and ARGV of ``ledger/lua/claim.lua`` (for scripts that embed the claim)."""
        return (
            [self.keys.job(job_id), self.keys.unknown, self.keys.leases,
             self.keys.inflight_messages, self.keys.unknown_messages],
            [self.clock(), lease_ms, worker_id, job_id, token or uuid.uuid4().hex,
             message.encode() if message is not None else b""],
        )  # fmt: skip

    def finish(self, outcome: Finish) -> bool:
        """Record a send's outcome (:class:`Finish`); False if fenced out."""
        keys, args = outcome.call(self.keys, ttl_s=self.ttl_s, now_ms=self.clock())
        return bool(self._finish(keys=keys, args=args, client=self.client))

    def defer(self, job_id: str, message: Message[Any], due_ms: int) -> None:
        """Bring ``message`` back at ``due_ms`` (a job whose lease another worker holds).

        If the holder finishes, the message then finds the job done; if it died, the
        lease has expired and the job is ``unknown``: never ``sending`` with no message.
        """
        data = renew_message(message).encode()

        def write(pipe: Pipeline) -> None:
            # The message before its schedule entry: promote_due reads them in that order.
            pipe.hsetnx(self.keys.schedule_messages, job_id, data)
            pipe.zadd(self.keys.schedule, {job_id: due_ms}, nx=True)

        self.durability.run(self.client, write)

    def finished(self, job_id: str, fence: int, state: str) -> bool:
        """Did a finishing call with ``fence`` land (``state`` reached under that fence)?

        After a Redis error the call is retried; if its first try had landed, the
        retry is fenced out, and this tells the two cases apart.
        """
        current_fence, current_state = self.client.hmget(self.keys.job(job_id), "fence", "state")
        return current_fence == str(fence).encode() and current_state == state.encode()

    def sweep_expired_leases(self, *, limit: int = 500) -> int:
        """Move jobs still ``sending`` after their lease to ``unknown``; returns how many."""
        keys = [self.keys.leases, self.keys.unknown, self.keys.inflight_messages,
                self.keys.unknown_messages]  # fmt: skip
        return int(self._sweep(keys=keys, args=[self.clock(), limit, self.keys.prefix]))

    def job_for_provider_id(self, provider_id: str) -> str | None:
        """The job that Connectus knows as ``provider_id`` (for webhooks and reports)."""
        value = self.client.get(self.keys.provider(provider_id))
        return value.decode() if isinstance(value, bytes) else value

    def promote_due(self, *, limit: int = 500) -> int:
        """Move due scheduled jobs and retries onto their queues; returns how many."""
        return int(
            self._promote(
                keys=[self.keys.schedule, self.keys.schedule_messages],
                args=[self.clock(), limit, self.keys.dramatiq_namespace, self.keys.prefix],
            )
        )

    # -- unknown, review and dead letters -------------------------------------

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
        return None if data is None else Message.decode(_bytes(data))

    def resolve(
        self, job_id: str, mode: str, *, review: bool = False, provider_id: str = "",
        message: Message[Any] | None = None, error_class: str = "", reason: str = "",
    ) -> bool:  # fmt: skip
        """Settle an ``unknown`` (or in-review) job: ``sent`` (found at Connectus),
        ``requeue`` (not found: send again), ``review`` (undecidable: hold for an
        operator) or ``fail``. Atomic, and a no-op unless the job is still unknown."""
        k = self.keys
        source = (k.review, k.review_messages) if review else (k.unknown, k.unknown_messages)
        target_a, target_b = "", ""
        extra: list[str | int | bytes] = [error_class, reason[:500]]
        if mode == "sent":
            target_a, extra = k.provider(provider_id), [provider_id, self.ttl_s]
        elif mode == "requeue":
            assert message is not None
            fresh = renew_message(message)
            target_a, target_b = k.queue(fresh.queue_name), k.queue_messages(fresh.queue_name)
            extra = [fresh.options["redis_message_id"], fresh.encode()]
        elif mode == "review":
            extra = [message.encode() if message is not None else b""]
        keys = [k.job(job_id), *source, k.review, k.review_messages, target_a, target_b]
        return bool(self._resolve(keys=keys, args=[job_id, self.clock(), mode, *extra]))

    def replay(self, job_id: str) -> str:
        """Put a dead-lettered job back on its queue, same id and idempotency key."""
        k = self.keys
        data = self.client.hget(k.dead_letter_messages, job_id)
        if data is None:
            return "missing"
        message = renew_message(Message.decode(_bytes(data)))
        queue = message.queue_name
        answer = self._replay(
            keys=[k.job(job_id), k.dead_letters, k.dead_letter_messages, k.queue(queue),
                  k.queue_messages(queue)],
            args=[job_id, self.clock(), message.options["redis_message_id"], message.encode()],
        )  # fmt: skip
        return str(answer[0].decode())


def _bytes(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode()
