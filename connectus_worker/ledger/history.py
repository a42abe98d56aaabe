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
    """Outcomes in ``[start_s, start_s + step)`` (epoch s); ``_asdict()`` for JSON (a
    tuple: a day is 1,440 of them per read, and a tuple is the cheapest to build)."""

    start_s: int
    sent: int = 0
    failed: int = 0
    unknown: int = 0


def _counts(value: object) -> tuple[int, int, int] | None:
    """``sent,failed,unknown`` of a history field; None if it is not one of ours."""
    try:
        sent, failed, unknown = (int(n) for n in text(value).split(","))
    except ValueError:
        return None
    return sent, failed, unknown


def _buckets(counts: dict[int, list[int]], first: int, end: int, step_s: int) -> list[Bucket]:
    return [Bucket(s, *counts.get(s, (0, 0, 0))) for s in range(first, end, step_s)]


def _add(counts: dict[int, list[int]], at: int, found: tuple[int, int, int]) -> None:
    bucket = counts.setdefault(at, [0, 0, 0])
    for n in range(3):
        bucket[n] += found[n]


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
    counts: dict[int, list[int]] = {}
    for hour, fields in zip(hours, pipe.execute(), strict=True):
        for name, value in fields.items():
            found = _counts(value)
            if found is None or not text(name).isdigit():
                continue  # not a field of ours
            at = hour + int(name) * 60
            if start <= at < end:
                _add(counts, start + (at - start) // step_s * step_s, found)
    return _buckets(counts, start, end, step_s)


def campaign_series(
    client: redis.Redis, keys: Keys, campaign_id: str, *, step_s: int = 60
) -> list[Bucket]:
    """A campaign's outcomes from its first counted step to its last, oldest first, each
    ``step_s`` long (a multiple of 60) and starting at a multiple of it; empty if none
    finished yet. One ``HGETALL``.
    """
    if step_s < 60 or step_s % 60:
        raise ValueError("step_s: must be a multiple of 60 s")
    counts: dict[int, list[int]] = {}
    for name, value in client.hgetall(keys.campaign_history(campaign_id)).items():
        found = _counts(value)
        if found is not None and text(name).isdigit():
            _add(counts, int(name) * 60 // step_s * step_s, found)
    return _buckets(counts, min(counts), max(counts) + step_s, step_s) if counts else []
