"""``--tenant`` on the command line (issue 21, Medium 3), run as a subprocess.

A job or campaign is its tenant's: ``status``, ``cancel`` and the campaign
commands of another tenant answer as for an unknown id (exit 1) and change
nothing; a bad tenant name is bad input (exit 2) naming ``tenant``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

CLI = [sys.executable, "-m", "connectus_worker.cli"]


@pytest.fixture
def env(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> dict[str, str]:
    # redis_client: its fixture deletes every key under the prefix afterwards.
    return {**os.environ, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix}


def run(args: list[str], env: dict[str, str], code: int = 0) -> dict[str, Any]:
    result = subprocess.run(
        [*CLI, *args, "--json"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == code, result.stderr + result.stdout
    return dict(json.loads(result.stdout))


def test_jobs_are_read_and_cancelled_by_their_tenant_only(env: dict[str, str]) -> None:
    send = ["send", "sms", "--to", "56987688060", "--text", "hola", "--key", "k-1"]
    job_id = run([*send, "--tenant", "acme"], env)["job_id"]
    other = run([*send, "--tenant", "globex"], env)["job_id"]  # same key, another tenant
    assert other != job_id
    assert "no job" in run(["status", job_id, "--tenant", "globex"], env, code=1)["error"]
    assert "no job" in run(["status", job_id], env, code=1)["error"]  # the default tenant
    assert run(["cancel", job_id, "--tenant", "globex"], env, code=1)["result"] == "missing"
    record = run(["status", job_id, "--tenant", "acme"], env)
    assert (record["tenant"], record["state"]) == ("acme", "queued")
    assert run(["cancel", job_id, "--tenant", "acme"], env)["result"] == "cancelled"


def test_a_bad_tenant_name_is_bad_input(env: dict[str, str]) -> None:
    answer = run(["status", "0123abcd", "--tenant", "Not:Valid"], env, code=2)
    assert answer["error"].startswith("tenant: ")


def test_campaigns_are_controlled_by_their_tenant_only(env: dict[str, str], tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("dst_number,name\n56987688060,Ana\n", encoding="utf-8")
    at = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d 10:00")  # never due here
    accepted = run(["campaign", "send", str(rows), "--name", "Promo", "--text", "Hola {name}",
                    "--at", at, "--no-balance", "--tenant", "acme"], env)  # fmt: skip
    campaign_id = accepted["campaign_id"]
    assert "no campaign" in run(["campaign", "pause", campaign_id, "--tenant", "globex"], env,
                                code=1)["error"]  # fmt: skip
    assert "no campaign" in run(["campaign", "status", campaign_id], env, code=1)["error"]
    listed = run(["campaign", "list", "--tenant", "globex"], env)
    assert listed == {"campaigns": []}
    status = run(["campaign", "status", campaign_id, "--tenant", "acme"], env)
    assert status["state"] == "scheduled"  # the pause across tenants changed nothing
