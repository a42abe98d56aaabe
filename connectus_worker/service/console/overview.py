"""What the overview and a campaign's chart read: a fixed number of Redis commands,
whatever the data size.

No SCAN and no per-job read: queue depths and the age of each queue's
oldest message (:func:`ledger.queue_stats.queue_stats`), the sizes of the schedule,
dead-letter, unknown and review sets (``ZCARD``), the live worker processes
(Dramatiq's ``__heartbeats__``, one member per process, named
``host:pid:uuid`` by :class:`transport.broker.ConnectusBroker`), each account's
breaker scopes and limiter rates (:func:`worker.accounts.accounts_status`, as
``connectus breaker``: a fixed number of commands per account of
``CONNECTUS_ACCOUNTS``) and the per-minute outcomes (:func:`ledger.history.series`).
A campaign's chart: the exact per-minute counts its jobs' finish scripts keep
(:func:`ledger.history.campaign_series`, one ``HGETALL``), merged into at most
:data:`BARS` bars, read when its page loads, not on its 2 s refresh.
docs/console.md counts the commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import redis

from connectus_worker.config import Settings
from connectus_worker.ledger.history import Bucket, campaign_series, series
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.queue_stats import QueueStat, queue_stats
from connectus_worker.worker.accounts import accounts_status

#: The day's chart in 10-minute bars (144), the hour's per minute (60).
DAY_STEP_S = 600
#: At most this many bars in a campaign's chart.
BARS = 60


@dataclass(frozen=True)
class Overview:
    queues: list[QueueStat]
    sets: dict[str, int]  # scheduled, dead_letters, unknown, review, active_campaigns
    workers: list[dict[str, Any]]  # pod, pid, last_heartbeat_ms, age_s
    accounts: list[dict[str, Any]]  # account, breaker, rates (worker.accounts.accounts_status)
    hour: list[Bucket]
    day: list[Bucket]
    now_ms: int


def read_overview(client: redis.Redis, keys: Keys, settings: Settings) -> Overview:
    """One refresh of the overview (see the module's docstring for its commands)."""
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    pipe = client.pipeline(transaction=False)
    for key in (keys.schedule, keys.dead_letters, keys.unknown, keys.review):
        pipe.zcard(key)
    pipe.scard(keys.active_campaigns)
    pipe.zrange(f"{keys.dramatiq_namespace}:__heartbeats__", 0, -1, withscores=True)
    answers = pipe.execute()
    return Overview(
        queues=queue_stats(client, keys, settings.queues, now_ms=now_ms),
        sets=dict(
            zip(
                ("scheduled", "dead_letters", "unknown", "review", "active_campaigns"),
                (int(n) for n in answers[:5]),
                strict=True,
            )
        ),
        workers=_workers(answers[5], now_ms),
        accounts=accounts_status(settings, client),
        hour=series(client, keys, now_s=now_ms / 1000, span="hour"),
        day=series(client, keys, now_s=now_ms / 1000, span="day", step_s=DAY_STEP_S),
        now_ms=now_ms,
    )


def _workers(rows: list[tuple[bytes, float]], now_ms: int) -> list[dict[str, Any]]:
    workers = []
    for member, score in rows:
        name = member.decode() if isinstance(member, bytes) else str(member)
        pod, pid = ("?", "?")
        parts = name.split(":")
        if len(parts) >= 3:  # host:pid:uuid (a process of this version)
            pod, pid = ":".join(parts[:-2]), parts[-2]
        workers.append({"pod": pod, "pid": pid, "last_heartbeat_ms": int(score),
                        "age_s": max(0.0, (now_ms - score) / 1000)})  # fmt: skip
    return sorted(workers, key=lambda w: (w["pod"], w["pid"]))


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
