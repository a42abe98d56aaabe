"""The release of a v1 bulk SMS chunk through ``lua/release_bulk.lua``: the pump's fast path.

O(1) per chunk: the chunk's message is queued, its rows counted ``queued`` and
the cursor advanced (compare-and-set), as :meth:`CampaignStore.release` does.
The rows' job records are made when the chunk is first claimed
(:meth:`ledger.jobs_batch.BatchLedger.claim_bulk`), which also reads the opt-out list.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Message

from connectus_worker.campaign.model import Campaign
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.luascript import load

RELEASE_BULK = load(__package__, "release_bulk.lua")


class BulkRelease:
    """Releases v1 bulk SMS chunks of one :class:`CampaignStore`."""

    def __init__(self, store: CampaignStore) -> None:
        self.store = store
        self._script = store.client.register_script(RELEASE_BULK)

    def release(self, campaign: Campaign, *, queue: str, chunk_message: Message[Any]) -> bool:
        """Release chunk ``campaign.cursor``.

        False if another process released it first or the campaign stopped running.
        """
        k, cid, number = self.store.keys, campaign.campaign_id, campaign.cursor
        args: list[str | int | bytes] = [
            number, self.store.clock(), self.store.job_ttl_s,
            chunk_message.options["redis_message_id"], chunk_message.encode(),
            campaign.chunk_rows(number),
        ]  # fmt: skip
        keys = [k.campaign(cid), k.campaign_counts(cid), k.queue(queue), k.queue_messages(queue)]
        return bool(self._script(keys=keys, args=args))
