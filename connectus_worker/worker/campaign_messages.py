"""The messages a campaign puts on the queues, and the checks of a chunk message.

A v1 bulk chunk travels as one message that names the chunk (its rows stay
stored); a recipient retried, replayed or reconciled alone travels as a single
v3 job message rebuilt from the stored list. The pump
(:mod:`worker.campaigns`), the bulk sender (:mod:`worker.bulk`), the actors and
the chunk recovery all build and read them here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from dramatiq import Message

from connectus_worker.campaign.model import Campaign
from connectus_worker.campaign.render import payload_for
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import epoch_ms

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
    records and skipping the chunk, and :mod:`worker.chunk_recovery` puts it back.
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
