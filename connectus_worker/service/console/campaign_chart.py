"""A campaign's sends over time, estimated from a bounded sample of its recipients.

Nothing counts a campaign's sends per minute, so the chart is drawn from the
``sent_at`` of at most :data:`SAMPLE` released recipients spread evenly over
the list (every ``step``-th), each standing for ``step`` recipients: at most
:data:`SAMPLE` ``HMGET`` in two pipelines (:meth:`CampaignStore.jobs_state`),
whatever the campaign's size. Exact for a campaign of up to :data:`SAMPLE`
recipients. Drawn when the campaign's page loads, not on its 2 s refresh.
"""

from __future__ import annotations

import math

from connectus_worker.campaign.model import Campaign
from connectus_worker.campaign.store import CampaignStore, job_id_for
from connectus_worker.ledger.history import Bucket

SAMPLE = 2000
#: At most this many bars, each a whole number of seconds.
BARS = 60


def sends_over_time(store: CampaignStore, campaign: Campaign, *,
                    now_ms: int) -> tuple[list[Bucket], int]:  # fmt: skip
    """(buckets of estimated sends from the start to the end or now, recipients sampled)."""
    if campaign.started_ms is None:
        return [], 0
    released = campaign.released
    step = max(1, math.ceil(released / SAMPLE))
    ids = [job_id_for(campaign.campaign_id, i) for i in range(0, released, step)]
    sent = [int(r["sent_at"]) // 1000 for r in store.jobs_state(ids) if r.get("sent_at")]
    start = campaign.started_ms // 1000
    end = max([(campaign.finished_ms or now_ms) // 1000, *sent]) + 1
    width = max(1, math.ceil((end - start) / BARS))
    starts = range(start, end, width)
    counts = [0] * len(starts)
    for at in sent:
        index = (at - start) // width
        if 0 <= index < len(counts):
            counts[index] += step
    return [Bucket(start_s=s, sent=n) for s, n in zip(starts, counts, strict=True)], len(ids)
