"""Sent, failed and unknown outcomes per minute, kept in Redis (the console's chart).

The scripts that finish jobs count each outcome in the same call
(``ledger/lua/lib_history.lua``): one hash per hour (:meth:`Keys.history`), field the
minute of the hour, value ``<sent>,<failed>,<unknown>``, expiring
:data:`HISTORY_TTL_S` after its last write; a day is at most 25 hashes whatever the
traffic. A campaign's jobs are also counted in its own hash
(:meth:`Keys.campaign_history`, field the epoch minute), as long as its record lives.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import redis

from connectus_worker.ledger.keys import Keys
from connectus_worker.redis import text

#: How long an hour's hash lives after its last write (s): a day and two hours,
#: so the last day is always whole. Written by ledger/lua/lib_history.lua (same value).
HISTORY_TTL_S = 26 * 3600
SPANS_S = {"hour": 3600, "day": 86400}


class Bucket(NamedTuple):
    """Outcomes in ``[start_s, start_s + step)`` (epoch s); ``_asdict()`` for JSON.

    A named tuple, not a model or a frozen dataclass: a day is 1,440 of them per
    read, and a tuple is the cheapest to build."""

    start_s: int
    sent: int = 0
    failed: int = 0
    unknown: int = 0


def series(
    client: redis.Redis,
    keys: Keys,
    *,
    now_s: float,
    span: Literal["hour", "day"],
    step_s: int = 60,
) -> list[Bucket]:
    """The buckets of the last ``span`` up to the step that holds ``now_s`` (epoch s),
    oldest first, each ``step_s`` long and starting at a multiple of it (60: per
    minute; a multiple of 60 that divides the span). One pipelined round trip of
    at most 25 ``HGETALL``, whatever the traffic.
    """
    if span not in SPANS_S:
        raise ValueError(f"span: must be one of {sorted(SPANS_S)}, not {span!r}")
    length = SPANS_S[span]
    if step_s < 60 or step_s % 60 or length % step_s:
        raise ValueError("step_s: must be a multiple of 60 s that divides the span")
    end = (int(now_s) // step_s + 1) * step_s  # the current step is included (aligned)
    start = end - length
    hours = range(start // 3600 * 3600, end, 3600)
    pipe = client.pipeline(transaction=False)
    for hour in hours:
        pipe.hgetall(keys.history(hour))
    steps = length // step_s
    sent, failed, unknown = [0] * steps, [0] * steps, [0] * steps
    for hour, fields in zip(hours, pipe.execute(), strict=True):
        for name, value in fields.items():
            try:
                offset = hour - start + int(name) * 60
                s, f, u = map(int, text(value).split(","))
            except ValueError:
                continue  # not a field of ours
            if 0 <= offset < length:
                step = offset // step_s
                sent[step] += s
                failed[step] += f
                unknown[step] += u
    return [
        Bucket(start + i * step_s, *counts)
        for i, counts in enumerate(zip(sent, failed, unknown, strict=True))
    ]


def campaign_series(
    client: redis.Redis, keys: Keys, campaign_id: str, *, step_s: int = 60
) -> list[Bucket]:
    """A campaign's outcomes from its first counted step to its last, oldest first,
    each ``step_s`` long (a multiple of 60) and starting at a multiple of it; empty
    if none finished yet. One ``HGETALL`` of one field per minute the campaign sent in.
    """
    if step_s < 60 or step_s % 60:
        raise ValueError("step_s: must be a multiple of 60 s")
    counts: dict[int, list[int]] = {}
    for name, value in client.hgetall(keys.campaign_history(campaign_id)).items():
        try:
            at = int(name) * 60
            parts = [int(x) for x in text(value).split(",")]
        except ValueError:
            continue  # not a field of ours
        if len(parts) != 3:
            continue
        bucket = counts.setdefault(at // step_s * step_s, [0, 0, 0])
        for n in range(3):
            bucket[n] += parts[n]
    if not counts:
        return []
    first, last = min(counts), max(counts)
    return [Bucket(s, *counts.get(s, (0, 0, 0))) for s in range(first, last + step_s, step_s)]
