"""Campaigns in Redis: the stored recipient list, the record and its transitions.

Layout (``{prefix}`` = ``KEY_PREFIX``)::

    {prefix}:campaign:{id}              hash    definition, state, cursor
    {prefix}:campaign:{id}:chunk:{n}    string  JSON rows [[dst, value...], ...]
    {prefix}:campaign:{id}:counts       hash    job state -> released jobs in it
    {prefix}:campaign:{id}:parked       hash    messages held while not running
    {prefix}:campaign:{id}:deliveries   hash    chunk -> Connectus id_delivery
    {prefix}:campaigns                  zset    ids by creation time (ms)
    {prefix}:campaigns:active           set     ids not finished nor cancelled

A pending recipient costs one JSON row in a chunk (tens of bytes), not a
job record and a Dramatiq message: those are made when its chunk is
released, shortly before it is sent (:mod:`worker.campaigns`). Recipient
``i`` is job ``{id}-{i}`` with idempotency key ``campaign:{id}:{i}``, so a
release that runs twice can't create a second job for anyone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
from dramatiq import Message

from connectus_worker.campaign.model import Campaign, CampaignState
from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.durability import UNCONFIRMED, Durability
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load
from connectus_worker.redis import text

#: Recipients per stored chunk: one v1 ``send_sms_bulk`` at most.
CHUNK_SIZE = 1_000
#: Chunks written per Redis pipeline while a campaign is accepted.
_WRITE_BATCH = 20


class CampaignConflict(ValueError):
    """The idempotency key is already used by a different campaign."""

    def __init__(self, key: str, campaign_id: str) -> None:
        self.key = key
        self.campaign_id = campaign_id
        super().__init__(
            f"idempotency_key: already used by campaign {campaign_id} with a different definition"
        )


@dataclass(frozen=True, slots=True)
class Created:
    campaign_id: str
    created: bool  # False: the key was seen before; this is the first campaign's id


@dataclass(frozen=True, slots=True)
class ReleasedJob:
    """One recipient's job, as the release script writes it."""

    job_id: str
    idempotency_key: str
    masked_dst: str
    segments: int
    message: Message[Any] | None  # None for v1 bulk: the chunk's message carries it
    opted_out: bool = False  # created cancelled: the number answered STOP since acceptance
    # The normalised recipient, only to index its keyed digest (ledger.lookup); never stored.
    dst: str = ""


@dataclass(frozen=True, slots=True)
class Control:
    status: Literal["ok", "refused"]
    state: str  # the state before (ok) or the current one (refused; '' = no campaign)


def job_id_for(campaign_id: str, index: int) -> str:
    return f"{campaign_id}-{index}"


class CampaignStore:
    """Campaign records and their chunked recipient lists, on one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl_s: int,
        job_ttl_s: int,
        clock: Callable[[], int] = epoch_ms,
        recipient_key: bytes | None = None,
        durability: Durability = UNCONFIRMED,
    ) -> None:
        """``recipient_key``: ``CONTENT_HASH_KEY``, to index released recipients by
        their keyed digest (:mod:`ledger.lookup`); None: not indexed."""
        self.client = client
        self.recipient_key = recipient_key
        self.keys = keys
        self.ttl_s = ttl_s
        self.job_ttl_s = job_ttl_s
        self.clock = clock
        # A campaign's commit is confirmed before its id is returned (durability).
        self.durability = durability
        # campaign/lua/: each file says its KEYS, ARGV and answer.
        self._create = client.register_script(load(__package__, "create.lua"))
        self._release = client.register_script(load(__package__, "release.lua"))
        self._release_bulk = client.register_script(load(__package__, "release_bulk.lua"))
        self._control = client.register_script(load(__package__, "control.lua"))
        self._park = client.register_script(load(__package__, "park.lua"))
        self._pump_lock = client.register_script(load(__package__, "pump_lock.lua"))

    # -- reading ----------------------------------------------------------------

    def get(self, campaign_id: str) -> Campaign | None:
        raw = self.client.hgetall(self.keys.campaign(campaign_id))
        return Campaign.from_redis(raw) if raw else None

    def counts(self, campaign_id: str) -> dict[str, int]:
        """Released jobs by state (only states with a non-zero count)."""
        raw = self.client.hgetall(self.keys.campaign_counts(campaign_id))
        counts = {text(k): int(v) for k, v in raw.items()}
        return {state: n for state, n in counts.items() if n}

    def recent(self, *, limit: int = 100) -> list[Campaign]:
        """The newest campaigns first (those whose record has not expired)."""
        raw: list[bytes] = self.client.zrevrange(self.keys.campaigns, 0, limit - 1)  # type: ignore[assignment]
        ids = [text(i) for i in raw]
        pipe = self.client.pipeline(transaction=False)
        for campaign_id in ids:
            pipe.hgetall(self.keys.campaign(campaign_id))
        return [Campaign.from_redis(raw) for raw in pipe.execute() if raw]

    def active_ids(self) -> list[str]:
        return sorted(text(i) for i in self.client.smembers(self.keys.active_campaigns))

    def chunk(self, campaign_id: str, number: int) -> list[list[str]]:
        """The rows of one chunk: ``[dst, value...]`` aligned with the campaign's fields."""
        data = self.client.get(self.keys.campaign_chunk(campaign_id, number))
        if data is None:
            raise LookupError(f"campaign {campaign_id}: chunk {number} is missing (expired?)")
        rows: list[list[str]] = json.loads(data)
        return rows

    def chunks_made(self, campaign_id: str) -> bytes:
        """The "records made" bitmap of a v1 bulk campaign's chunks (bit n: chunk n;
        see ``ledger/lua/claim_bulk.lua``); ``b""`` when none was."""
        return bytes(self.client.get(self.keys.campaign_made(campaign_id)) or b"")  # type: ignore[arg-type]

    def deliveries(self, campaign_id: str) -> dict[int, str]:
        """Chunk -> the Connectus delivery its v1 bulk created."""
        raw = self.client.hgetall(self.keys.campaign_deliveries(campaign_id))
        return {int(k): text(v) for k, v in raw.items() if text(k).isdigit()}

    def set_delivery(self, campaign_id: str, chunk: int, id_delivery: str) -> None:
        """Keep the chunk's delivery id, and when (ms) it was sent (for status polling)."""
        key = self.keys.campaign_deliveries(campaign_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping={str(chunk): id_delivery, f"{chunk}:at": self.clock()})
        pipe.expire(key, self.ttl_s)
        pipe.execute()

    def poll_marks(self, campaign_id: str) -> dict[str, int]:
        """Status-polling bookkeeping: ``{n}:at`` (sent), ``{n}:polled`` (last poll),
        ``{n}:done`` (every status final), all in ms."""
        raw = self.client.hgetall(self.keys.campaign_deliveries(campaign_id))
        return {text(k): int(v) for k, v in raw.items() if ":" in text(k)}

    def mark_polled(self, campaign_id: str, chunk: int, *, done: bool) -> None:
        field = f"{chunk}:done" if done else f"{chunk}:polled"
        self.client.hset(self.keys.campaign_deliveries(campaign_id), field, self.clock())

    # -- accepting: chunks are written while the list is checked, and the record is
    # created over them in one script at the end, so a refused or crashed accept
    # leaves only chunks (deleted, or expiring by their TTL).

    def write_batches(
        self,
        campaign_id: str,
        batches: Iterable[Sequence[Sequence[str]]],
        *,
        chunk_size: int = CHUNK_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Store rows (``[dst, value...]``), given in lists of any length (one per
        checked batch), as chunks of ``chunk_size``; returns how many rows.

        Streams: at most ``_WRITE_BATCH`` chunks are held in memory at once.
        ``progress`` is called with the number of rows written so far.
        """

        def chunks() -> Iterator[list[Sequence[str]]]:
            held: list[Sequence[str]] = []
            for batch in batches:
                held += batch
                while len(held) >= chunk_size:
                    yield held[:chunk_size]
                    del held[:chunk_size]
            if held:
                yield held

        pipe = self.client.pipeline(transaction=False)
        count = 0
        for number, rows in enumerate(chunks()):
            data = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
            pipe.set(self.keys.campaign_chunk(campaign_id, number), data, ex=self.ttl_s)
            count += len(rows)
            if number % _WRITE_BATCH == _WRITE_BATCH - 1:
                pipe.execute()
                if progress is not None:
                    progress(count)
        pipe.execute()
        if progress is not None:
            progress(count)
        return count

    def discard_chunks(self, campaign_id: str, chunks: int) -> None:
        """Delete chunks written for a campaign that was not committed."""
        names = [self.keys.campaign_chunk(campaign_id, n) for n in range(chunks)]
        for start in range(0, len(names), 1000):
            self.client.delete(*names[start : start + 1000])

    def commit(
        self,
        campaign_id: str,
        fields: Mapping[str, str | int],
        *,
        fingerprint: str,
        idempotency_key: str | None,
        tenant: str = DEFAULT_TENANT,
    ) -> Created:
        """Create the campaign record over its written chunks, atomically.

        ``idempotency_key`` is ``tenant``'s (campaigns have a namespace of their own,
        see :mod:`ledger.keys`). Raises :class:`CampaignConflict` for a key used by
        another definition.
        """
        args: list[str | int] = [campaign_id, self.clock(), self.ttl_s, fingerprint]
        for name, value in {**fields, "tenant": tenant}.items():
            args += [name, value]
        idem = self.keys.campaign_idempotency(idempotency_key, tenant) if idempotency_key else ""
        keys = [self.keys.campaign(campaign_id), self.keys.campaigns, self.keys.active_campaigns,
                idem]  # fmt: skip
        # Confirmed (durability): the chunks, written before, are confirmed with it.
        ((status, existing),) = self.durability.run(
            self.client, lambda pipe: self._create(keys=keys, args=args, client=pipe)
        )
        existing_id = text(existing)
        if status == b"conflict":
            raise CampaignConflict(str(idempotency_key), existing_id)
        return Created(existing_id, status == b"created")

    # -- transitions --------------------------------------------------------------

    def release(
        self,
        campaign: Campaign,
        jobs: Sequence[ReleasedJob],
        *,
        queue: str,
        chunk_message: Message[Any] | None = None,
    ) -> bool:
        """Release chunk ``campaign.cursor``: create its jobs and messages, advance
        the cursor. False if another process released it first or the campaign
        stopped running."""
        args: list[str | int | bytes] = [
            campaign.cursor, self.clock(), self.job_ttl_s, campaign.campaign_id,
            campaign.kind.value, queue,
            chunk_message.options["redis_message_id"] if chunk_message else "",
            chunk_message.encode() if chunk_message else b"",
        ]  # fmt: skip
        for job in jobs:
            message = job.message
            args += [
                job.job_id, job.idempotency_key, job.masked_dst, job.segments,
                "cancelled" if job.opted_out else "queued",
                message.options["redis_message_id"] if message else "",
                message.encode() if message else b"",
                recipient_digest(self.recipient_key, job.dst)
                if self.recipient_key and job.dst else "",
            ]  # fmt: skip
        answer = self._release(
            keys=[self.keys.campaign(campaign.campaign_id),
                  self.keys.campaign_counts(campaign.campaign_id),
                  self.keys.queue(queue), self.keys.queue_messages(queue)],
            args=args,
        )  # fmt: skip
        return bool(answer)

    def release_bulk(self, campaign: Campaign, *, queue: str, chunk_message: Message[Any]) -> bool:
        """:meth:`release` for a v1 bulk SMS chunk, O(1) per chunk: its message is
        queued and its rows counted ``queued``; their job records are made by the
        chunk's first claim (:meth:`ledger.jobs_batch.BatchLedger.claim_bulk`)."""
        cid, number = campaign.campaign_id, campaign.cursor
        args: list[str | int | bytes] = [
            number, self.clock(), self.job_ttl_s, chunk_message.options["redis_message_id"],
            chunk_message.encode(), campaign.chunk_rows(number),
        ]  # fmt: skip
        keys = [self.keys.campaign(cid), self.keys.campaign_counts(cid), self.keys.queue(queue),
                self.keys.queue_messages(queue)]  # fmt: skip
        return bool(self._release_bulk(keys=keys, args=args))

    def transition(
        self,
        campaign_id: str,
        to: CampaignState,
        *,
        allowed_from: Iterable[CampaignState],
        fields: Mapping[str, str | int] | None = None,
    ) -> Control:
        """Move the campaign to ``to`` if it is in one of ``allowed_from``."""
        args: list[str | int] = [self.clock(), self.keys.dramatiq_namespace, to.value,
                                 ",".join(s.value for s in allowed_from), self.job_ttl_s,
                                 self.ttl_s]  # fmt: skip
        for name, value in (fields or {}).items():
            args += [name, value]
        status, state = self._control(
            keys=[self.keys.campaign(campaign_id), self.keys.campaign_counts(campaign_id),
                  self.keys.campaign_parked(campaign_id), self.keys.active_campaigns],
            args=args,
        )  # fmt: skip
        return Control("ok" if status == b"ok" else "refused", text(state))

    def park(self, campaign_id: str, member: str, message: Message[Any]) -> str:
        """Hold ``message`` until the campaign runs; 'parked' or 'queued' (it runs now)."""
        fresh = message.copy(options={**message.options, "redis_message_id": str(uuid.uuid4())})
        answer = self._park(
            keys=[self.keys.campaign(campaign_id), self.keys.campaign_parked(campaign_id),
                  self.keys.queue(fresh.queue_name), self.keys.queue_messages(fresh.queue_name)],
            args=[member, fresh.options["redis_message_id"], fresh.encode()],
        )  # fmt: skip
        return text(answer)

    def parked(self, campaign_id: str) -> int:
        return int(self.client.hlen(self.keys.campaign_parked(campaign_id)))

    def opted_out(self, numbers: Sequence[str]) -> list[bool]:
        """Which of ``numbers`` opted out of marketing (one round trip)."""
        if not numbers:
            return []
        answer = self.client.smismember(self.keys.opt_out, list(numbers))
        return [bool(flag) for flag in answer]

    def try_pump_lock(self, campaign_id: str, owner: str, *, ttl_ms: int) -> bool:
        """A short lease so that one process at a time releases a campaign's chunks.

        An optimisation only: release is compare-and-set, so two pumps at
        once waste work but never release a chunk twice.
        """
        return bool(
            self._pump_lock(keys=[self.keys.campaign_pump(campaign_id)], args=[owner, ttl_ms])
        )

    def jobs_state(self, job_ids: Sequence[str]) -> Iterator[dict[str, str]]:
        """Selected fields of many job records, in order ({} for a missing one)."""
        names = ("state", "provider_id", "delivery_status", "error_class", "last_error",
                 "attempts", "sent_at", "email_opened_at", "email_clicked_at")  # fmt: skip
        for start in range(0, len(job_ids), 1000):
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids[start : start + 1000]:
                pipe.hmget(self.keys.job(job_id), names)
            for values in pipe.execute():
                yield {n: text(v) for n, v in zip(names, values, strict=True) if v is not None}
