"""What a v1 bulk recipient shows between its chunk's release and first claim.

A v1 bulk chunk's job records are made by its first claim (``ledger/lua/claim_bulk.lua``),
not by its release: one write per recipient on the Redis thread a bulk campaign
saturates. Until then the readers (``get_status``, ``connectus status``, the
campaign report) show the recipient as :func:`placeholder` makes it: ``queued``, or
``cancelled`` once its campaign is. A made chunk whose records are gone has expired.
"""

from __future__ import annotations

from datetime import UTC, datetime

from connectus_worker.campaign.model import Campaign, CampaignState, Transport
from connectus_worker.campaign.render import masked, template_of
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.domain.models import JobRecord, State
from connectus_worker.domain.validation import sms_segments


def is_made(made: bytes, number: int) -> bool:
    """Bit ``number`` of a :meth:`CampaignStore.chunks_made` bitmap (Redis bit order)."""
    byte = number // 8
    return byte < len(made) and bool(made[byte] & (0x80 >> (number % 8)))


def pending_state(campaign: Campaign, made: bytes, number: int) -> State | None:
    """The state of a released chunk's recipients that have no record, if they are
    pending (a v1 bulk chunk not claimed yet); None when no record means expired."""
    if campaign.transport is not Transport.V1_BULK or is_made(made, number):
        return None
    return State.CANCELLED if campaign.state is CampaignState.CANCELLED else State.QUEUED


def placeholder(store: CampaignStore, job_id: str, *, queue: str) -> JobRecord | None:
    """The record a released, not yet claimed v1 bulk recipient would show; None for
    any other job id (not a campaign's, not released, or its record was made).

    ``queue``: the queue its chunk went to (the bulk queue of the settings).
    """
    campaign_id, dash, index_text = job_id.rpartition("-")
    if not dash or not index_text.isdigit():
        return None
    campaign = store.get(campaign_id)
    index = int(index_text)
    if campaign is None or index >= campaign.released:
        return None
    number, offset = divmod(index, campaign.chunk_size)
    state = pending_state(campaign, store.chunks_made(campaign_id), number)
    if state is None:
        return None
    row = store.chunk(campaign_id, number)[offset]
    since = datetime.fromtimestamp((campaign.started_ms or campaign.created_ms) / 1000, tz=UTC)
    return JobRecord(
        job_id=job_id,
        kind=campaign.kind,
        state=state,
        queue=queue,
        idempotency_key=f"campaign:{campaign_id}:{index}",
        dst=masked(campaign, row[0]),
        segments=sms_segments(template_of(campaign).render_row(row)),
        outcome="cancelled" if state is State.CANCELLED else None,
        created_at=since,
        updated_at=since,
        campaign=campaign_id,
    )
