"""Four OS processes share one bucket on the real Redis: the rate holds and no window bursts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bench.ratelimit_bench import run, worst_burst
from tests.support.redis_namespace import delete_prefix, new_prefix

RATE, BURST, PROCESSES, SECONDS = 200.0, 20, 4, 4.0


@pytest.fixture(scope="module")
def result(redis_url: str) -> Iterator[dict]:
    """One 4 s run shared by the checks below (the bucket's keys are removed after)."""
    prefix = new_prefix()
    try:
        yield run(redis_url, rate=RATE, burst=BURST, processes=PROCESSES, seconds=SECONDS,
                  prefix=prefix)  # fmt: skip
    finally:
        client = redis.Redis.from_url(redis_url)
        delete_prefix(client, prefix)
        client.close()


def test_the_aggregate_rate_is_within_5_percent_of_the_target(result: dict) -> None:
    assert result["grants"] >= BURST + RATE * SECONDS * 0.95
    assert abs(result["achieved_rate_per_s"] - RATE) <= RATE * 0.05, result


def test_every_process_got_tokens(result: dict) -> None:
    # Four distinct processes shared the bucket (no one process did all the work).
    assert len(set(result["pids"])) == PROCESSES


def test_no_window_admits_more_than_the_bucket(result: dict) -> None:
    granted = sorted(g for g, _ in result["grants_data"])
    assert worst_burst(granted, RATE) <= BURST + 1e-6
    # Send times lag their tokens by the sleep overshoot; allow exactly that much.
    late_s = max(0.0, result["lateness_ms"]["max"]) / 1000
    assert result["worst_burst_send_time"] <= BURST + RATE * late_s + 1e-6, result["lateness_ms"]


def test_no_process_sends_before_its_token_and_each_grant_is_one_round_trip(result: dict) -> None:
    assert result["early_sends"] == 0
    # One acquire call per grant, plus each process's last (past the deadline).
    assert result["acquire_calls"] == result["grants"] + PROCESSES


def test_the_window_measure_catches_an_excess() -> None:
    # The check is not vacuous: burst + 2 tokens at one instant exceeds it.
    assert worst_burst([0.0] * (BURST + 2), RATE) == BURST + 2
    assert worst_burst([i * 1000 / RATE for i in range(100)], RATE) == pytest.approx(1.0)
