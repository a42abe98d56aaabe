"""v1 bulk chunk messages that a worker older than this version dead-lettered, put back.

A chunk message says its records are made by its first claim (``records="claim"``,
:func:`worker.campaign_messages.chunk_message`). An older worker (a rolling update,
a rollback) dead-letters it as malformed instead of skipping the chunk for good; each
maintenance pass moves such entries back to the bulk queue, in one script. Moving one
back twice is harmless: a chunk made once is claimed job by job.
"""

from __future__ import annotations

import json
from typing import Any

import redis
import structlog

from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load
from connectus_worker.worker.campaign_messages import (
    BULK_ACTOR,
    RECORDS_AT_CLAIM,
    chunk_message,
    chunk_of,
)

log = structlog.get_logger("connectus_worker.worker.chunk_recovery")

# worker/lua/requeue_chunk.lua says its KEYS, ARGV and answer.
REQUEUE = load(__package__, "requeue_chunk.lua")


class ChunkRecovery:
    """Moves chunk messages refused by older workers back to ``queue``."""

    def __init__(self, client: redis.Redis, keys: Keys, *, queue: str) -> None:
        self.client = client
        self.keys = keys
        self.queue = queue
        self._requeue = client.register_script(REQUEUE)

    def run_once(self, *, limit: int = 1_000) -> int:
        """Move back up to ``limit`` such messages; returns how many moved."""
        k, moved = self.keys, 0
        for member, _ in self.client.zscan_iter(k.dead_letters, match="malformed:*", count=500):
            chunk = refused_chunk(self.client.hget(k.dead_letter_messages, member))
            if chunk is None:
                continue
            message = chunk_message(self.queue, *chunk)
            answer = self._requeue(
                keys=[k.dead_letters, k.dead_letter_messages, k.dead_letter_reasons,
                      k.queue(self.queue), k.queue_messages(self.queue)],
                args=[member, message.options["redis_message_id"], message.encode()],
            )  # fmt: skip
            if not answer:
                continue  # another process moved it first
            moved += 1
            log.warning("bulk.chunk_requeued", campaign=chunk[0], chunk=chunk[1],
                        reason="dead-lettered by a worker older than this version")  # fmt: skip
            if moved >= limit:
                break
        return moved


def refused_chunk(data: Any) -> tuple[str, int] | None:
    """(campaign, chunk) of a dead-lettered chunk message with ``records="claim"``
    that this version's actor takes (:func:`worker.campaign_messages.chunk_of`)."""
    try:
        kept = json.loads(data)
        actor, args, kwargs = kept["actor"], kept["args"], kept["kwargs"]
        if actor != BULK_ACTOR or any(kwargs.get(k) != v for k, v in RECORDS_AT_CLAIM.items()):
            return None  # an older pump's message: its refusal was not about records
        return chunk_of(args, kwargs)
    except (TypeError, ValueError, LookupError, AttributeError):  # not such a message
        return None
