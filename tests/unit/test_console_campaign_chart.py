"""The campaign page's chart: the campaign's exact per-minute outcomes, merged into bars."""

from __future__ import annotations

import fakeredis

from connectus_worker.ledger.history import Bucket
from connectus_worker.ledger.keys import Keys
from connectus_worker.service.console.overview import BARS, sends_over_time

KEYS = Keys("t")
MINUTE0 = 29_000_000  # an epoch minute


def write(client: fakeredis.FakeRedis, counts: dict[int, str]) -> None:
    """The per-minute fields the finish scripts keep (ledger/lua/lib_history.lua)."""
    client.hset(KEYS.campaign_history("c1"), mapping=counts)


def test_a_short_campaign_has_a_bar_per_minute_with_every_outcome() -> None:
    client = fakeredis.FakeRedis()
    write(client, {MINUTE0: "5,1,0", MINUTE0 + 2: "3,0,1"})
    bars, width = sends_over_time(client, KEYS, "c1")
    assert width == 60
    start = MINUTE0 * 60
    assert bars == [Bucket(start, 5, 1, 0), Bucket(start + 60, 0, 0, 0),
                    Bucket(start + 120, 3, 0, 1)]  # fmt: skip


def test_a_long_campaign_is_merged_into_at_most_the_bars_and_counts_stay_exact() -> None:
    client = fakeredis.FakeRedis()
    minutes = 10 * BARS + 7  # a campaign that sent for 10 hours and 7 minutes
    write(client, {MINUTE0 + m: "2,0,0" for m in range(minutes)})
    bars, width = sends_over_time(client, KEYS, "c1")
    assert len(bars) <= BARS and width % 60 == 0 and width > 60
    assert sum(b.sent for b in bars) == 2 * minutes  # exact, not an estimate


def test_a_campaign_that_sent_nothing_yet_has_no_chart() -> None:
    assert sends_over_time(fakeredis.FakeRedis(), KEYS, "c1") == ([], 60)
