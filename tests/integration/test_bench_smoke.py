"""The benchmark harness runs end to end and writes results.json in the documented shape.

A test of the harness, not of speed: the smallest scenario (``sms_0ms`` with a
few dozen messages, project and baseline) against a private Redis and a real
sandbox, then a check of every field's presence and type. Nothing about the
figures themselves is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TOP_KEYS = {"machine", "command", "scenarios"}
ROW_KEYS = {
    "name", "system", "latency_ms", "processes", "messages", "msgs_per_s", "p50_ms",
    "p99_ms", "cpu_s_per_1k", "peak_rss_mb", "redis_cmds_per_msg", "redis_bytes_per_recipient",
}  # fmt: skip
NUMBERS = ROW_KEYS - {"name", "system", "messages"}


def run_bench(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bench --quick --scale 0.1 --no-docs --out OUT ARGS``; fails the test on error."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--scale", "0.1", "--no-docs",
         "--out", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_smallest_scenario_writes_results_in_the_documented_shape(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run_bench(out, "--only", "sms_0ms")

    data = json.loads(out.read_text())
    assert set(data) == TOP_KEYS
    assert isinstance(data["machine"], str) and "nproc=" in data["machine"]
    assert data["command"].startswith("python -m bench")
    rows = data["scenarios"]
    assert {(r["name"], r["system"]) for r in rows} == {
        ("sms_0ms_t8", "baseline"),
        ("sms_0ms_t64", "project"),
    }
    for row in rows:
        assert set(row) == ROW_KEYS, row
        assert row["system"] in {"project", "baseline", "sandbox"}
        assert isinstance(row["name"], str)
        assert isinstance(row["messages"], int) and row["messages"] > 0
        for key in NUMBERS:
            assert row[key] is None or isinstance(row[key], int | float), (key, row[key])
        # A worker run measures every field.
        assert all(row[key] is not None for key in NUMBERS), row
    details = json.loads((tmp_path / "details.json").read_text())
    assert set(details["scenarios"]) == {"sms_0ms_t8/baseline", "sms_0ms_t64/project"}
    for run in details["scenarios"].values():
        # Every worker spends some CPU in the kernel and sleeps at least once a message
        # (its HTTP call waits for the sandbox).
        assert 0 < run["worker_kernel_share"] < 1, run
        assert run["worker_switches_per_msg"] >= 1, run


def test_drains_in_rounds_keep_the_median_round_and_the_ceiling_is_shown(tmp_path: Path) -> None:
    """Each drain row is its median round, and says every round's rate; bench.ceiling
    (Dramatiq alone, an actor that sleeps 50 ms) is among them, shown beside the verdict."""
    out = tmp_path / "results.json"
    done = run_bench(out, "--only", "drain", "--drain-rounds", "3")
    rows = json.loads(out.read_text())["scenarios"]
    details = json.loads((tmp_path / "details.json").read_text())["scenarios"]
    assert len(rows) == 5  # one row per drain, not one per round
    for row in rows:
        rates = details[f"{row['name']}/{row['system']}"]["rounds_msgs_per_s"]
        assert len(rates) == 3
        assert row["msgs_per_s"] == sorted(rates)[1]
    assert "median of 3 rounds" in done.stdout

    (row,) = [r for r in rows if r["name"] == "ceiling_50ms_t32"]
    assert row["system"] == "baseline"
    run = details["ceiling_50ms_t32/baseline"]
    # 32 threads that each sleep 50 ms drain at most 640 msg/s: more would mean
    # messages counted before they ran.
    assert 0 < row["msgs_per_s"] <= 32 / 0.05 * 1.02, row
    # A 60-message drain lasts about 0.1 s: the CPU's 10 ms ticks may count nothing.
    assert row["cpu_s_per_1k"] >= 0 and row["peak_rss_mb"] > 0, row
    share = run["worker_kernel_share"]
    assert share is None or 0 <= share <= 1, run
    assert run["worker_switches_per_msg"] >= 1, run
    printed = " ".join(done.stdout.split())  # rich wraps long lines anywhere
    assert "Dramatiq alone" in printed
    assert "drain_50ms_t32 reaches" in printed
