"""``python -m bench.http_clients`` runs every concurrency model against a real sandbox.

A test of the measurement, not of speed: each model sends its requests (a
thread's or task's HTTP error, or an answer other than 200, fails the run) and
reports a rate, a CPU cost and the context switches per request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.http_clients import MODELS

ROOT = Path(__file__).resolve().parents[2]


def test_every_model_is_measured_against_the_sandbox() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.http_clients", "--requests", "40", "--rounds", "1",
         "--concurrency", "4", "--latency-ms", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["latency_ms"] == 0
    assert [row["model"] for row in report["rows"]] == list(MODELS)
    for row in report["rows"]:
        assert (row["requests"], row["concurrency"]) == (40, 4)
        assert row["req_per_s"] > 0 and row["cpu_us_per_req"] > 0
        assert row["switches_per_req"] >= 0
