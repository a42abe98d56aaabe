"""The naive campaign: what a user writes instead of ``CampaignProducer.send``.

A plain Dramatiq actor on a ``RedisBroker`` with default middleware, and a
loop that reads the CSV with :class:`csv.DictReader` and enqueues one message
per recipient, delayed until the campaign's time (``send_with_options(...,
delay=...)``, Dramatiq's way of saying "deliver at"). No validation, no
deduplication, no report: a lower bound on what accepting a list costs with
Dramatiq alone. The actor is never consumed in the benchmark; its body is
what a user would run later.

The broker is bound when the module is imported, from the environment:

- ``BENCH_CAMPAIGN_REDIS_URL`` (default ``redis://127.0.0.1:6379``)
- ``BENCH_CAMPAIGN_NAMESPACE`` (Dramatiq key namespace; use a throwaway one)
"""

from __future__ import annotations

import csv
import os
from itertools import islice
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "campaign"

broker = RedisBroker(  # type: ignore[no-untyped-call]
    url=os.environ.get("BENCH_CAMPAIGN_REDIS_URL", "redis://127.0.0.1:6379"),
    namespace=os.environ.get("BENCH_CAMPAIGN_NAMESPACE", "bench-campaign-naive"),
)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def send_campaign_sms(dst_number: str, sms_content: str) -> None:
    """What the user's worker would do later: one Connectus call per recipient."""
    raise RuntimeError("the benchmark never consumes this queue")


def enqueue_csv(path: Path, *, delay_ms: int, limit: int | None = None) -> int:
    """One delayed message per CSV row (``dst_number,name``); returns how many."""
    count = 0
    with path.open(newline="", encoding="utf-8") as file:
        for row in islice(csv.DictReader(file), limit):
            send_campaign_sms.send_with_options(
                args=(row["dst_number"], f"Hola {row['name']}"), delay=delay_ms
            )
            count += 1
    return count
