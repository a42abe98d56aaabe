"""ledger.history on fakeredis: outcomes counted by the finish scripts, the series' shape."""

from __future__ import annotations

import fakeredis
import pytest

from connectus_worker.ledger.history import HISTORY_TTL_S, campaign_series, series
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.jobs_batch import BatchLedger
from connectus_worker.ledger.keys import Keys

KEYS = Keys("hist")
HOUR = 1_700_000_000 // 3600 * 3600  # an hour's start (epoch s)


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


def _sending(client: fakeredis.FakeRedis, job_id: str) -> None:
    client.hset(KEYS.job(job_id), mapping={"job_id": job_id, "state": "sending", "fence": 1,
                                           "attempts": 1})  # fmt: skip


def _finish(store: JobStore, job_id: str, state: str, at_s: float) -> None:
    store.clock = Clock(int(at_s * 1000))  # type: ignore[method-assign]
    _sending(store.client, job_id)  # type: ignore[arg-type]
    assert store.finish(Finish(job_id, 1, "done", {"state": state}))


@pytest.fixture
def store() -> JobStore:
    return JobStore(fakeredis.FakeRedis(), KEYS, ttl_s=600)


def test_each_outcome_is_counted_in_its_minute(store: JobStore) -> None:
    _finish(store, "a", "sent", HOUR + 61)
    _finish(store, "b", "sent", HOUR + 119.9)
    _finish(store, "c", "failed", HOUR + 120)
    _finish(store, "d", "unknown", HOUR + 3599)
    _finish(store, "e", "retrying", HOUR + 60)  # not an outcome
    buckets = series(store.client, KEYS, now_s=HOUR + 3599, span="hour")
    assert len(buckets) == 60 and buckets[0].start_s == HOUR and buckets[-1].start_s == HOUR + 3540
    counted = {
        b.start_s - HOUR: (b.sent, b.failed, b.unknown)
        for b in buckets
        if b.sent or b.failed or b.unknown
    }
    assert counted == {60: (2, 0, 0), 120: (0, 1, 0), 3540: (0, 0, 1)}


def test_the_hour_spans_two_hashes_and_leaves_out_older_minutes(store: JobStore) -> None:
    _finish(store, "old", "sent", HOUR + 1799)  # 61 minutes before the last minute
    _finish(store, "in", "sent", HOUR + 1860)
    _finish(store, "now", "failed", HOUR + 3600 + 1830)
    buckets = series(store.client, KEYS, now_s=HOUR + 3600 + 1830, span="hour")
    assert buckets[0].start_s == HOUR + 1860 and buckets[-1].start_s == HOUR + 3600 + 1800
    assert sum(b.sent for b in buckets) == 1 and sum(b.failed for b in buckets) == 1


def test_a_day_in_steps_and_the_keys_bounded_lifetime(store: JobStore) -> None:
    for i in range(24):
        _finish(store, f"j{i}", "sent", HOUR + i * 3600 + 10)
    now = HOUR + 23 * 3600 + 30
    per_minute = series(store.client, KEYS, now_s=now, span="day")
    assert len(per_minute) == 1440 and sum(b.sent for b in per_minute) == 24
    quarters = series(store.client, KEYS, now_s=now, span="day", step_s=900)
    assert len(quarters) == 96 and sum(b.sent for b in quarters) == 24
    assert [b.start_s % 900 for b in quarters] == [0] * 96
    ttl = store.client.ttl(KEYS.history(HOUR))
    assert HISTORY_TTL_S - 5 <= ttl <= HISTORY_TTL_S


def test_bulk_and_lease_expiry_are_counted(store: JobStore) -> None:
    client = store.client
    store.clock = Clock((HOUR + 600) * 1000)  # type: ignore[method-assign]
    for job_id in ("x", "y"):
        _sending(client, job_id)  # type: ignore[arg-type]
    landed = BatchLedger(store).finish_sent_many(
        [("x", 1, "p1"), ("y", 1, "p2")], {"state": "sent"}
    )
    assert landed == [True, True]
    client.hset(KEYS.job("z"), mapping={"state": "sending", "fence": 1, "lease_until": 1})
    client.zadd(KEYS.leases, {"z": 1})
    assert store.sweep_expired_leases() == 1
    buckets = series(client, KEYS, now_s=HOUR + 600, span="hour")
    assert (buckets[-1].sent, buckets[-1].unknown) == (2, 1)


@pytest.mark.parametrize(("span", "step_s"), [("week", 60), ("hour", 30), ("hour", 420)])
def test_a_bad_span_or_step_is_refused(store: JobStore, span: str, step_s: int) -> None:
    with pytest.raises(ValueError, match=r"span|step_s"):
        series(store.client, KEYS, now_s=HOUR, span=span, step_s=step_s)  # type: ignore[arg-type]


def test_empty_history_is_all_zero_and_foreign_fields_are_ignored(store: JobStore) -> None:
    store.client.hset(KEYS.history(HOUR), mapping={"x": "1,2,3", "3": "garbage", "4": "1,2"})
    buckets = series(store.client, KEYS, now_s=HOUR + 5, span="hour")
    assert len(buckets) == 60 and not any(b.sent or b.failed or b.unknown for b in buckets)


def test_a_campaigns_jobs_are_also_counted_in_its_own_chart(store: JobStore) -> None:
    client = store.client
    client.hset(KEYS.campaign("c1"), "state", "running")
    client.expire(KEYS.campaign("c1"), 5000)
    client.hset(KEYS.job("c1-0"), mapping={"state": "sending", "fence": 1, "campaign": "c1"})
    store.clock = Clock((HOUR + 30) * 1000)  # type: ignore[method-assign]
    assert store.finish(Finish("c1-0", 1, "done", {"state": "failed"}))
    store.clock = Clock((HOUR + 200) * 1000)  # type: ignore[method-assign]
    for job_id in ("c1-1", "c1-2", "solo"):
        _sending(client, job_id)  # type: ignore[arg-type]
        if job_id != "solo":
            client.hset(KEYS.job(job_id), "campaign", "c1")
    landed = BatchLedger(store).finish_sent_many(
        [("c1-1", 1, "p1"), ("c1-2", 1, "p2"), ("solo", 1, "p3")], {"state": "sent"}
    )
    assert landed == [True, True, True]
    chart = campaign_series(client, KEYS, "c1")
    assert [(b.start_s - HOUR, b.sent, b.failed) for b in (chart[0], chart[-1])] == [
        (0, 0, 1),
        (180, 2, 0),
    ]
    assert len(chart) == 4 and sum(b.sent for b in chart) == 2  # the minutes between are zero
    assert [b.start_s for b in campaign_series(client, KEYS, "c1", step_s=3600)] == [HOUR]
    assert 4990 <= client.ttl(KEYS.campaign_history("c1")) <= 5000
    overall = series(client, KEYS, now_s=HOUR + 200, span="hour")
    assert sum(b.sent for b in overall) == 3 and sum(b.failed for b in overall) == 1
    assert campaign_series(client, KEYS, "none") == []
