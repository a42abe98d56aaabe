"""``connectus breaker``, run as a subprocess against a real stack: each open scope, its
reason and until when; ``--close`` for an operator who fixed the cause."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis

from tests.support.cli import run, run_json
from tests.support.stack_checks import running_stack
from tests.support.waiting import wait_for


def test_breaker_shows_each_open_scope_and_closes_one(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    env_extra = {"KEY_PREFIX": redis_prefix, "BREAKER_OPEN_S": "60", "BREAKER_MAX_OPEN_S": "120"}
    with running_stack(redis_url=redis_url, env=env_extra, processes=1, threads=2,
                        log_dir=tmp_path) as stack:  # fmt: skip
        env = stack.env
        with stack.sandbox_client() as client:  # Chile's SMS balance is spent
            client.put("/_sandbox/balance", json={"product": "sms", "amount": 0, "id_country": 1})
        closed = run_json(["breaker"], env)["breaker"]
        assert (closed["state"], closed["scopes"]) == ("closed", [])

        run_json(["send", "sms", "--to", "+56 9 8765 4321", "--text", "Hola"], env)
        wait_for(lambda: redis_client.hexists(f"{redis_prefix}:breaker:default:scopes",
                                              "balance:sms:CL"),
                 timeout_s=30, what="the scope opened")  # fmt: skip
        body = run_json(["breaker"], env)
        [scope] = body["breaker"]["scopes"]
        assert body["breaker"]["state"] == "open"
        assert (scope["scope"], scope["state"]) == ("balance:sms:CL", "open")
        assert scope["reason"].startswith("BalanceExhausted")
        until = scope["open_until_ms"]
        assert 55_000 <= until - scope["since_ms"] <= 60_000
        assert {r["product"] for r in body["rates"]} >= {"sms", "email"}

        human = run(["breaker"], env)
        assert human.returncode == 0, human.stderr
        iso = datetime.fromtimestamp(until / 1000, tz=UTC).isoformat(timespec="seconds")
        assert f"balance:sms:CL: open until {iso} (BalanceExhausted" in human.stdout
        assert "circuit breaker of default: open" in human.stdout

        bad = run(["breaker", "--close", "balance sms"], env)
        assert bad.returncode == 2 and "--close" in bad.stderr

        after = run_json(["breaker", "--close", "balance:sms:CL"], env)
        assert after["closed"] == {"account": "default", "scope": "balance:sms:CL", "was": "open"}
        assert (after["breaker"]["state"], after["breaker"]["scopes"]) == ("closed", [])
