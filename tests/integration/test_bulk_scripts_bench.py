"""``python -m bench.bulk_scripts`` runs a v1 bulk chunk's three scripts on a private Redis.

A test of the measurement, not of speed: each round releases, claims and
finishes its chunks (a refused release or claim fails the run) and reports
Redis time per recipient for each script, with the commands inside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.bulk_scripts import PHASES

ROOT = Path(__file__).resolve().parents[2]


def test_each_script_of_a_chunk_is_measured() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bulk_scripts", "--chunks", "2", "--rounds", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["chunk_size"], report["chunks"], len(report["rounds"])) == (1000, 2, 2)
    for result in report["rounds"]:
        assert list(result) == list(PHASES)
        # The release is O(1) per chunk; the claim makes every record (HSET, EXPIRE).
        assert result["release"]["total"] < 0.5 < result["claim"]["total"]
        assert result["claim"]["hset"] > 0 and result["claim"]["expire"] > 0
        assert result["finish"]["hset"] > 0 and result["finish"]["set"] > 0
