"""Accepting a campaign into Redis: its recipient chunks, then the record over them.

The write path of :class:`campaign.store.CampaignStore` (which see for
the key layout): chunks are written while the list is checked, and the
campaign record is created over them in one script at the end, so a refused
or crashed accept leaves only chunks (deleted, or expiring by their TTL).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import redis
from redis.commands.core import Script

from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.durability import Durability
from connectus_worker.ledger.keys import Keys
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


class ChunkWriter:
    """The accept path of :class:`campaign.store.CampaignStore` (its attributes)."""

    client: redis.Redis
    keys: Keys
    ttl_s: int
    clock: Callable[[], int]
    durability: Durability
    _create: Script

    def write_chunks(
        self,
        campaign_id: str,
        rows: Iterable[Sequence[str]],
        *,
        chunk_size: int = CHUNK_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Store ``rows`` (``[dst, value...]``) as chunks; returns how many rows.

        Streams: at most ``_WRITE_BATCH`` chunks are held in memory at once.
        ``progress`` is called with the number of rows written so far.
        """
        it = iter(rows)
        batches = iter(lambda: list(islice(it, chunk_size)), [])
        return self.write_batches(campaign_id, batches, chunk_size=chunk_size, progress=progress)

    def write_batches(
        self,
        campaign_id: str,
        batches: Iterable[Sequence[Sequence[str]]],
        *,
        chunk_size: int = CHUNK_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """:meth:`write_chunks` for rows that come in lists of any length (the
        accept path's, one per checked batch): cut into chunks of ``chunk_size``."""
        pipe = self.client.pipeline(transaction=False)
        held: list[Sequence[str]] = []
        count = chunks = pending = 0
        for batch in batches:
            held += batch
            while len(held) >= chunk_size:
                chunk = held[:chunk_size]
                del held[:chunk_size]
                self._queue_chunk(pipe, campaign_id, chunks, chunk)
                count, chunks, pending = count + len(chunk), chunks + 1, pending + 1
                if pending == _WRITE_BATCH:
                    pipe.execute()
                    pending = 0
                    if progress is not None:
                        progress(count)
        if held:
            self._queue_chunk(pipe, campaign_id, chunks, held)
            count += len(held)
        pipe.execute()
        if progress is not None:
            progress(count)
        return count

    def _queue_chunk(
        self, pipe: Any, campaign_id: str, number: int, rows: list[Sequence[str]]
    ) -> None:
        data = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        pipe.set(self.keys.campaign_chunk(campaign_id, number), data, ex=self.ttl_s)

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
