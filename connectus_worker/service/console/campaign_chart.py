"""A campaign's outcomes over time, exact: the per-minute counts its jobs' finish
scripts keep (:func:`ledger.history.campaign_series`: one ``HGETALL``, one field per
minute the campaign sent in), merged into at most :data:`BARS` bars of whole minutes.
Drawn when the campaign's page loads, not on its 2 s refresh.
"""

from __future__ import annotations

import math

import redis

from connectus_worker.ledger.history import Bucket, campaign_series
from connectus_worker.ledger.keys import Keys

#: At most this many bars.
BARS = 60


def sends_over_time(client: redis.Redis, keys: Keys, campaign_id: str) -> tuple[list[Bucket], int]:
    """(buckets from the first minute the campaign sent in to its last, bar width in s)."""
    minutes = campaign_series(client, keys, campaign_id)
    if not minutes:
        return [], 60
    width = 60 * max(1, math.ceil(len(minutes) / BARS))
    first = minutes[0].start_s
    merged: dict[int, list[int]] = {}
    for minute in minutes:
        bar = merged.setdefault(first + (minute.start_s - first) // width * width, [0, 0, 0])
        bar[0] += minute.sent
        bar[1] += minute.failed
        bar[2] += minute.unknown
    return [Bucket(start, *counts) for start, counts in sorted(merged.items())], width
