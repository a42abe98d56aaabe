"""``connectus optout list|show|add|remove`` as a subprocess, on the real Redis."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from typing import Any

import pytest
import redis

from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.optout import history_key
from tests.support.cli import run, run_json

CLI = [sys.executable, "-m", "connectus_worker.cli"]
NUMBER = "+56 9 8765 4321"
DIGITS = "56987654321"


@pytest.fixture
def env(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix}


def test_add_show_list_remove_and_the_history(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    assert run_json(["optout", "add", NUMBER], env) == {
        "number": DIGITS, "opted_out": True, "changed": True}  # fmt: skip
    assert run_json(["optout", "add", DIGITS], env)["changed"] is False  # already out
    assert run_json(["optout", "list"], env) == {"numbers": [DIGITS], "next_cursor": 0}
    plain = run(["optout", "list"], env)
    assert plain.returncode == 0 and plain.stdout.split() == [DIGITS]
    removed = run_json(["optout", "remove", NUMBER], env)
    assert removed == {"number": DIGITS, "opted_out": False, "changed": True}
    assert run_json(["optout", "list"], env)["numbers"] == []

    shown: dict[str, Any] = run_json(["optout", "show", NUMBER], env)
    assert shown["opted_out"] is False
    assert [(c["action"], c["source"], c["changed"]) for c in shown["history"]] == [
        ("out", "cli", True), ("out", "cli", False), ("in", "cli", True)]  # fmt: skip
    times = [c["at_ms"] for c in shown["history"]]
    assert times == sorted(times) and all(t > 1_700_000_000_000 for t in times)
    human = run(["optout", "show", NUMBER], env)
    assert human.returncode == 0 and "(no change)" in human.stdout
    # The history is keyed by the number's HMAC under CONTENT_HASH_KEY: no key names
    # the number, nor its plain SHA-256 (reversed by trying every number).
    keys = list(redis_client.scan_iter(match=f"{redis_prefix}:*"))
    hash_key = env["CONTENT_HASH_KEY"].encode()
    assert history_key(Keys(redis_prefix), DIGITS, hash_key=hash_key) in keys
    assert not [k for k in keys if hashlib.sha256(DIGITS.encode()).hexdigest() in k]
    assert not [k for k in keys if DIGITS in k]


def test_a_bad_number_exits_2_naming_it(env: dict[str, str]) -> None:
    answer = run_json(["optout", "add", "12345"], env, code=2)
    assert answer["error"].startswith("number:")
    assert subprocess.run([*CLI, "optout", "remove", "abc"], env=env, capture_output=True,
                          text=True, timeout=60, check=False).returncode == 2  # fmt: skip
