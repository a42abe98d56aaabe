"""Sent, failed and unknown outcomes per minute, kept in Redis (the console's chart).

The scripts that finish jobs count each outcome in the same call
(``ledger/lua/lib_history.lua``): one hash per hour (:meth:`Keys.history`), field the
minute of the hour, value ``<sent>,<failed>,<unknown>``, expiring
:data:`HISTORY_TTL_S` after its last write; a day is at most 25 hashes whatever the
traffic. A campaign's jobs are also counted in its own hash
(:meth:`Keys.campaign_history`, field the epoch minute), as long as its record lives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, NamedTuple

import redis

from connectus_worker.ledger.keys import Keys
from connectus_worker.redis import text

#: How long an hour's hash lives after its last write (s): a day and two hours,
#: so the last day is always whole. Written by ledger/lua/lib_history.lua (same value).
HISTORY_TTL_S = 26 * 3600
SPANS_S = {"hour": 3600, "day": 86400}


class Bucket(NamedTuple):
    """Outcomes in ``[start_s, start_s + step)`` (epoch s); ``_asdict()`` for JSON (a
    tuple: a day is 1,440 of them per read, and a tuple is the cheapest to build)."""

    start_s: int
    sent: int = 0
    failed: int = 0
    unknown: int = 0


def _minutes(fields: Mapping[Any, Any], base_s: int) -> Iterator[tuple[int, list[int]]]:
    """(epoch s, [sent, failed, unknown]) of each minute a history hash counts: field
    ``n`` is the minute ``n`` after ``base_s``. Fields not of ours are skipped."""
    for name, value in fields.items():
        try:
            counts = [int(n) for n in text(value).split(",")]
        except ValueError:
            continue
        if len(counts) == 3 and text(name).isdigit():
            yield base_s + int(text(name)) * 60, counts


def _buckets(minutes: Iterable[tuple[int, list[int]]], step_s: int) -> dict[int, Bucket]:
    """The minutes summed per step (keyed by the step's start, a multiple of ``step_s``)."""
    sums: dict[int, list[int]] = {}
    for at, counts in minutes:
        total = sums.setdefault(at // step_s * step_s, [0, 0, 0])
        for n in range(3):
            total[n] += counts[n]
    return {start: Bucket(start, *total) for start, total in sums.items()}


def series(
    client: redis.Redis,
    keys: Keys,
    *,
    now_s: float,
    span: Literal["hour", "day"],
    step_s: int = 60,
) -> list[Bucket]:
    """The buckets of the last ``span`` up to the step that holds ``now_s`` (epoch s),
    oldest first, each ``step_s`` long and starting at a multiple of it (a multiple of
    60 that divides the span). One pipelined round trip of at most 25 ``HGETALL``.
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
    minutes = [(at, counts) for hour, fields in zip(hours, pipe.execute(), strict=True)
               for at, counts in _minutes(fields, hour) if start <= at < end]  # fmt: skip
    found = _buckets(minutes, step_s)
    return [found.get(s, Bucket(s)) for s in range(start, end, step_s)]


def campaign_series(
    client: redis.Redis, keys: Keys, campaign_id: str, *, step_s: int = 60
) -> list[Bucket]:
    """A campaign's outcomes from its first counted step to its last, oldest first, each
    ``step_s`` long (a multiple of 60) and starting at a multiple of it; empty if none
    finished yet. One ``HGETALL``.
    """
    if step_s < 60 or step_s % 60:
        raise ValueError("step_s: must be a multiple of 60 s")
    found = _buckets(_minutes(client.hgetall(keys.campaign_history(campaign_id)), 0), step_s)
    if not found:
        return []
    return [found.get(s, Bucket(s)) for s in range(min(found), max(found) + step_s, step_s)]
