"""Ledger transitions for many jobs at once: a v1 bulk of up to 1,000 recipients.

The same per-job state machine as :class:`ledger.jobs.JobStore` (the same Lua claim,
``lib_claim.lua``, and the same fenced ``finish.lua``), one round trip each way for
a whole chunk: ``claim_bulk.lua`` (which makes the chunk's records at its first
claim) before the bulk call, ``finish_sent_many.lua`` or a pipeline of
``finish.lua`` after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.ledger.claims import Claim, claimed
from connectus_worker.ledger.jobs import FINISH, Finish, JobStore
from connectus_worker.luascript import load

CLAIM_BULK = load(__package__, "claim_bulk.lua")
FINISH_SENT_MANY = load(__package__, "finish_sent_many.lua")


@dataclass(frozen=True, slots=True)
class BulkChunk:
    """Which v1 bulk chunk :meth:`BatchLedger.claim_bulk` claims, and its records' fields.

    ``made_ttl_s``: how long the chunk's "records made" mark is kept (s): the
    campaign's TTL, so that it outlives every copy of the chunk's message.
    """

    campaign_id: str
    number: int
    first_index: int
    kind: str
    queue: str
    made_ttl_s: int


class BatchLedger:
    """Claims and finishes many jobs of one :class:`JobStore` per round trip."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._claim_bulk = store.client.register_script(CLAIM_BULK)
        self._finish_sent = store.client.register_script(FINISH_SENT_MANY)
        self._finish = store.client.register_script(FINISH)

    def claim_bulk(
        self,
        chunk: BulkChunk,
        rows: Sequence[tuple[str, str, int]],
        *,
        worker_id: str,
        lease_ms: int,
        token: str,
        recipient_key: bytes | None = None,
    ) -> list[Claim]:
        """Claim every row of a v1 bulk chunk, making its job records at its first claim.

        ``rows``: (number, masked number, SMS segments) per recipient, in chunk
        order. Answers in order, as :meth:`JobStore.claim`'s; an opted-out number is
        ``done``/``cancelled``. ``recipient_key`` (``CONTENT_HASH_KEY``): the made
        records are indexed by their number's keyed digest; None: not indexed.
        """
        store, k, cid = self.store, self.store.keys, chunk.campaign_id
        args: list[str | int] = [
            store.clock(), lease_ms, worker_id, token, k.prefix, cid, chunk.number,
            chunk.first_index, store.ttl_s, chunk.made_ttl_s, chunk.kind, chunk.queue,
        ]  # fmt: skip
        for number, masked, segments in rows:
            digest = recipient_digest(recipient_key, number) if recipient_key else ""
            args += [number, masked, segments, digest]
        keys = [k.unknown, k.leases, k.inflight_messages, k.unknown_messages, k.campaign(cid),
                k.campaign_counts(cid), k.campaign_made(cid), k.opt_out]  # fmt: skip
        # Confirmed (durability) before any of them is sent.
        (answers,) = store.durability.run(
            store.client, lambda pipe: self._claim_bulk(keys=keys, args=args, client=pipe)
        )
        return [claimed(answer) for answer in answers]

    def finish_sent_many(
        self, items: Sequence[tuple[str, int, str]], fields: Mapping[str, str | int]
    ) -> list[bool]:
        """(job_id, fence, provider_id) of jobs finished with the same ``fields``."""
        k = self.store.keys
        args: list[str | int] = [self.store.ttl_s, k.prefix, len(fields) + 1]
        for name, value in {**fields, "updated_at": self.store.clock()}.items():
            args += [name, value]
        for job_id, fence, provider_id in items:
            args += [job_id, fence, provider_id]
        landed = self._finish_sent(keys=[k.leases, k.inflight_messages], args=args)
        return [bool(x) for x in landed]

    def finish_many(self, items: Sequence[Finish]) -> list[bool]:
        """Apply every outcome, fenced, in one pipeline; True where it landed."""
        now = self.store.clock()
        pipe = self.store.client.pipeline(transaction=False)
        for item in items:
            keys, args = item.call(self.store.keys, ttl_s=self.store.ttl_s, now_ms=now)
            self._finish(keys=keys, args=args, client=pipe)
        return [bool(landed) for landed in pipe.execute()]
