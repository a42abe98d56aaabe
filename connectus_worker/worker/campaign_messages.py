"""The messages a campaign puts on the queues, the checks of a chunk message, and the
chunk messages an older worker refused, put back (:class:`ChunkRecovery`).

A v1 bulk chunk travels as one message that names the chunk (its rows stay
stored); a recipient retried, replayed or reconciled alone travels as a single
v3 job message rebuilt from the stored list. The pump
(:mod:`worker.campaigns`), the bulk sender (:mod:`worker.bulk`) and the actors
build and read them here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import structlog
from dramatiq import Message

from connectus_worker.campaign.model import Campaign
from connectus_worker.campaign.render import payload_for
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load

log = structlog.get_logger("connectus_worker.worker.campaign_messages")

# worker/lua/requeue_chunk.lua says its KEYS, ARGV and answer.
REQUEUE = load(__package__, "requeue_chunk.lua")

#: The Dramatiq actor that sends one chunk through v1 ``send_sms_bulk``.
BULK_ACTOR = "send_sms_bulk"


#: The second argument of a chunk message: its records are made by its first claim.
RECORDS_AT_CLAIM = {"records": "claim"}


def chunk_of(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, int]:
    """(campaign, chunk) named by a chunk message's arguments, as :func:`chunk_message`
    writes them (an older pump's: ``chunk`` alone); ValueError names what is wrong."""
    chunk = kwargs.get("chunk")
    # An older pump's chunk message has 'chunk' alone (its records exist).
    extra = {k: v for k, v in kwargs.items() if k != "chunk"}
    if args or not isinstance(chunk, dict):
        raise ValueError("expected exactly one keyword argument, 'chunk'")
    if extra and extra != RECORDS_AT_CLAIM:
        raise ValueError(f"expected 'chunk', and only {RECORDS_AT_CLAIM} besides it")
    campaign, number = chunk.get("campaign"), chunk.get("chunk")
    if not isinstance(campaign, str) or not campaign:
        raise ValueError("chunk.campaign: must be a non-empty string")
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ValueError("chunk.chunk: must be a non-negative integer")
    if set(chunk) != {"campaign", "chunk"}:
        raise ValueError("chunk: expected 'campaign' and 'chunk' only")
    return campaign, number


def chunk_message(queue: str, campaign_id: str, chunk: int) -> Message[Any]:
    """The message of one v1 bulk chunk (it names the chunk; the rows stay stored).

    ``records="claim"`` says the chunk's records are made by its first claim. A
    worker older than that (a rolling update, a rollback) expects exactly one
    argument: it dead-letters the message as malformed instead of finding no
    records and skipping the chunk, and :class:`ChunkRecovery` puts it back.
    """
    return Message(
        queue_name=queue,
        actor_name=BULK_ACTOR,
        args=(),
        kwargs={"chunk": {"campaign": campaign_id, "chunk": chunk}, **RECORDS_AT_CLAIM},
        options={"redis_message_id": str(uuid.uuid4())},
    )


def single_message(
    campaign: Campaign, job_id: str, payload: Mapping[str, Any], queue: str, now_ms: int
) -> Message[Any]:
    """One recipient as a single v3 job message (retries, replays, reconciliation)."""
    index = job_id.rpartition("-")[2]
    job = {"job_id": job_id, "kind": campaign.kind.value,
           "key": f"campaign:{campaign.campaign_id}:{index}", "queue": queue,
           "payload": dict(payload), "created_ms": now_ms,
           "campaign": campaign.campaign_id, "account": campaign.account}  # fmt: skip
    return new_message(queue, campaign.kind.actor_name, job)


def recipient_message(store: CampaignStore, job_id: str, queue: str) -> Message[Any] | None:
    """Rebuild a campaign job's message from the stored list (None if not a campaign job).

    A job swept to ``unknown`` while in a v1 bulk has no in-flight copy (one
    bulk message carries the whole chunk); the reconciler gets its message here.
    """
    campaign_id, _, index = job_id.rpartition("-")
    if not campaign_id or not index.isdigit():
        return None
    campaign = store.get(campaign_id)
    if campaign is None:
        return None
    number, offset = divmod(int(index), campaign.chunk_size)
    try:
        rows = store.chunk(campaign_id, number)
    except LookupError:
        return None
    if offset >= len(rows):
        return None
    payload, _ = payload_for(campaign, rows[offset])
    return single_message(campaign, job_id, payload, queue, epoch_ms())


class ChunkRecovery:
    """Moves chunk messages that a worker older than ``records="claim"`` dead-lettered
    (a rolling update, a rollback) back to ``queue``, in one script each maintenance
    pass. Moving one back twice is harmless: a chunk made once is claimed job by job."""

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
    that this version's actor takes (:func:`chunk_of`)."""
    try:
        kept = json.loads(data)
        actor, args, kwargs = kept["actor"], kept["args"], kept["kwargs"]
        if actor != BULK_ACTOR or any(kwargs.get(k) != v for k, v in RECORDS_AT_CLAIM.items()):
            return None  # an older pump's message: its refusal was not about records
        return chunk_of(args, kwargs)
    except (TypeError, ValueError, LookupError, AttributeError):  # not such a message
        return None
