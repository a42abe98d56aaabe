"""The campaign benchmark runs end to end and returns rows in the shape of results.json.

A test of the benchmark, not of speed: every scenario of
:mod:`bench.campaign_bench` at a tiny size against the test Redis (its keys
under fresh prefixes, deleted afterwards) and a real sandbox and worker, then
a check of every field's presence and type, of the v1 bulk run's ledger
check, and that nothing was left in Redis. No figure is asserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from bench.campaign_bench import Sizes, run_campaign_scenarios

ROW_KEYS = {
    "name", "system", "latency_ms", "processes", "messages", "msgs_per_s", "p50_ms",
    "p99_ms", "cpu_s_per_1k", "peak_rss_mb", "redis_cmds_per_msg", "redis_bytes_per_recipient",
}  # fmt: skip
EXTRA_KEYS = {"seconds", "note"}
NUMBERS = ROW_KEYS - {"name", "system", "messages"}
TINY = Sizes(accept=3_000, naive=500, bulk=2_000, sandbox_s=0.5, bulk_processes=(1,))


def test_every_campaign_scenario_returns_a_row_in_the_results_shape(
    redis_url: str, tmp_path: Path
) -> None:
    details: dict[str, Any] = {}
    rows = run_campaign_scenarios(
        quick=True, redis_url=redis_url, workdir=tmp_path, sizes=TINY, details=details,
        log=lambda _: None,
    )  # fmt: skip

    by_key = {(r["name"], r["system"]): r for r in rows}
    assert set(by_key) == {
        ("campaign_accept_csv", "project"),
        ("campaign_accept_naive", "baseline"),
        ("campaign_sandbox_bulk", "sandbox"),
        ("campaign_v1_bulk", "project"),
    }
    for row in rows:
        assert ROW_KEYS <= set(row) <= ROW_KEYS | EXTRA_KEYS, row
        assert isinstance(row["messages"], int) and row["messages"] > 0
        assert isinstance(row["seconds"], float) and row["seconds"] > 0
        for key in NUMBERS:
            assert row[key] is None or isinstance(row[key], int | float), (key, row[key])
        assert row["msgs_per_s"] > 0
    assert by_key["campaign_accept_csv", "project"]["messages"] == TINY.accept
    assert by_key["campaign_accept_naive", "baseline"]["messages"] == TINY.naive
    assert by_key["campaign_v1_bulk", "project"]["messages"] == TINY.bulk
    measured = ("cpu_s_per_1k", "peak_rss_mb", "redis_cmds_per_msg", "redis_bytes_per_recipient")
    for name, system in [("campaign_accept_csv", "project"),
                         ("campaign_accept_naive", "baseline"),
                         ("campaign_v1_bulk", "project")]:  # fmt: skip
        row = by_key[name, system]
        assert all(row[field] is not None for field in measured), row

    bulk = details["campaign_v1_bulk/project"]
    assert bulk["ledger_ok"], bulk
    assert bulk["charges"] == TINY.bulk and bulk["duplicate_sends"] == 0
    assert (tmp_path / f"recipients_{TINY.accept}.csv").is_file()

    client = redis.Redis.from_url(redis_url)
    try:
        for extra in details.values():
            if "prefix" in extra:
                assert not list(client.scan_iter(match=f"{extra['prefix']}*", count=1000))
    finally:
        client.close()
