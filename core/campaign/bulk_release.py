"""The release of a v1 bulk SMS chunk through ``RELEASE_BULK``: the pump's fast path.

Same outcome as :meth:`CampaignStore.release` for such a chunk (job records,
counts, the chunk's message, the cursor compare-and-set), but the script
reads the rows, the opt-out list and derives ids and masked numbers itself;
the caller sends one number per row, its SMS segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dramatiq import Message

from core.campaign import scripts
from core.campaign.model import Campaign
from core.campaign.store import CampaignStore


class BulkRelease:
    """Releases v1 bulk SMS chunks of one :class:`CampaignStore`."""

    def __init__(self, store: CampaignStore) -> None:
        self.store = store
        self._script = store.client.register_script(scripts.RELEASE_BULK)

    def release(
        self,
        campaign: Campaign,
        segments: Sequence[int],
        *,
        queue: str,
        chunk_message: Message[Any],
    ) -> bool:
        """Release chunk ``campaign.cursor`` whose rows have these ``segments``.

        False if another process released it first or the campaign stopped running.
        """
        k, cid, number = self.store.keys, campaign.campaign_id, campaign.cursor
        args: list[str | int | bytes] = [
            number, self.store.clock(), self.store.job_ttl_s, cid, campaign.kind.value, queue,
            chunk_message.options["redis_message_id"], chunk_message.encode(),
            number * campaign.chunk_size, *segments,
        ]  # fmt: skip
        keys = [k.campaign(cid), k.campaign_counts(cid), k.queue(queue), k.queue_messages(queue),
                k.campaign_chunk(cid, number), k.opt_out]  # fmt: skip
        return bool(self._script(keys=keys, args=args))
