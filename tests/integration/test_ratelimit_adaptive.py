"""The adaptive limiter against the sandbox over HTTP and the real Redis.

Sender threads take tokens of one shared bucket (real Redis, Redis's clock),
send v3 SMS to a real sandbox and report throttles, as the worker's send path
does (bench/adaptive.py, the same loop as ``make bench``). Rates are high and
the limiter's window and recovery short so that each test takes seconds; the
verdicts are counts from the sandbox's charge ledger and its own count of the
answers it refused, over the steady part of the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bench.adaptive import Scenario, run_scenario
from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer

# Short adaptation so that a few seconds show it: a 1 s window (about 100 sends
# at these rates: enough to tell 3 % from 10 %), back to the configured rate 10 s
# after a decision.
FAST = {"window_s": 1.0, "recovery_s": 10.0}
SEND_ROUTE = "POST /api_v3/sms/send_individual"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig()) as server:
        yield server


def refused_by_the_limit(server: SandboxServer) -> int:
    stats = httpx.get(f"{server.base_url}/_sandbox/stats").json()["requests"]
    return int(stats.get(SEND_ROUTE, {}).get("limited", 0))


@pytest.mark.timeout(60)
def test_converges_just_below_a_provider_limit(sandbox: SandboxServer, redis_url: str) -> None:
    # The provider takes 80/s; the account is configured for 400/s.
    scenario = Scenario("limit", 400.0, limit_per_s=80.0)
    result = run_scenario(
        sandbox_url=sandbox.base_url, redis_url=redis_url, scenario=scenario, system="project",
        seconds=5.0, warmup_s=1.5, threads=16, latency_ms=5.0, adapt=FAST, log=lambda _: None,
    )  # fmt: skip
    # From the ledger: >= 85 % of the limit accepted over the last 3.5 s ...
    assert result.messages >= 0.85 * 80 * 3.5, result.details
    # It found the limit by being throttled, and then was throttled rarely: the
    # sandbox's own count of refused sends stays a small share of the sends.
    refused = refused_by_the_limit(sandbox)
    assert refused > 0
    assert result.details["throttle_share"] <= 0.10, result.details
    # Not held at the configured rate: sends were well below 400/s.
    assert result.details["sends_per_s"] < 120, result.details


@pytest.mark.timeout(60)
def test_random_throttles_do_not_slow_the_account(sandbox: SandboxServer, redis_url: str) -> None:
    # 3 % of sends answered ESME_RTHROTTLED at random, no provider limit, 100/s
    # configured (5 % is measured by make bench, over a 3 s window).
    scenario = Scenario("noise", 100.0, throttle_rate=0.03)
    result = run_scenario(
        sandbox_url=sandbox.base_url, redis_url=redis_url, scenario=scenario, system="project",
        seconds=4.0, warmup_s=1.0, threads=16, latency_ms=5.0, adapt=FAST, log=lambda _: None,
    )  # fmt: skip
    assert refused_by_the_limit(sandbox) == 0  # no limit: every throttle was noise
    assert result.details["throttles"] > 0  # and the noise was there
    # From the ledger: >= 85 % of the configured rate over the last 3 s.
    assert result.messages >= 0.85 * 100 * 3.0, result.details


@pytest.mark.timeout(60)
def test_the_old_aimd_is_sunk_by_the_same_noise(sandbox: SandboxServer, redis_url: str) -> None:
    # The same run through the pre-issue-18 AIMD (the bench's baseline): the test
    # above can tell a limiter that ignores noise from one that does not.
    scenario = Scenario("noise", 100.0, throttle_rate=0.03)
    result = run_scenario(
        sandbox_url=sandbox.base_url, redis_url=redis_url, scenario=scenario, system="aimd",
        seconds=4.0, warmup_s=1.0, threads=16, latency_ms=5.0, log=lambda _: None,
    )  # fmt: skip
    assert result.messages < 0.85 * 100 * 3.0, result.details
