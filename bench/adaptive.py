"""The adaptive rate limiter against a provider limit and against noise (issue 18, part 2).

Each scenario sets the sandbox (20 ms latency; a provider limit with
``limit_per_s``, random ``ESME_RTHROTTLED`` with ``throttle_rate``), then
``threads`` sender threads of this process loop for ``seconds``:

    acquire a token of the shared bucket (real Redis, Redis's clock)
    -> v3 send_individual over HTTP (the project's ConnectusClient)
    -> Throttled / RateLimited: ``on_throttled(retry_after)``; else (AIMD) ``on_success()``

as the worker's send path does (a throttled message is retried with a new
token there too). There is always a message to send: the figure is the
sustained rate, not a drain. Two systems per scenario, in the same run and
against the same sandbox: ``project`` (:class:`worker.ratelimit.RateLimiter`)
and ``aimd`` (:class:`bench.aimd_limiter.AimdLimiter`, the algorithm before
the redesign). The goodput is counted from the sandbox's charge ledger
(accepted and charged sends per second after ``warmup_s``); sends,
throttles and deferrals (no token within 5 s) from the senders.

The recovery scenario lifts the provider limit after ``lift_after_s`` and
reports how long until a whole second's goodput is back at 90 % of the
configured rate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import redis

from bench.aimd_limiter import AimdLimiter
from bench.rows import Result
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError, RateLimited, Throttled
from connectus_worker.worker.ratelimit import (
    Acquired,
    Bucket,
    Limits,
    RateLimiter,
    RateLimitRefused,
)
from devtools.stack import SANDBOX_KEY, SANDBOX_USER

LATENCY_MS = 20.0
THREADS = 32
ACQUIRE_TIMEOUT_S = 5.0  # RATE_ACQUIRE_TIMEOUT_S's default
SYSTEMS = ("aimd", "project")


@dataclass(frozen=True)
class Scenario:
    """One sandbox setting and the configured rate (RATE_SMS_PER_S, sends/s)."""

    name: str
    configured_per_s: float
    limit_per_s: float = 0.0
    throttle_rate: float = 0.0
    lift_after_s: float | None = None  # the provider limit is lifted then (s)


SCENARIOS = (
    Scenario("ratelimit_limit30_cfg100", 100.0, limit_per_s=30.0),
    Scenario("ratelimit_noise2_cfg50", 50.0, throttle_rate=0.02),
    Scenario("ratelimit_noise5_cfg50", 50.0, throttle_rate=0.05),
)
RECOVERY = Scenario("ratelimit_recovery_cfg100", 100.0, limit_per_s=30.0, lift_after_s=10.0)


class Limiter(Protocol):
    def acquire(self, product: str, *, timeout_s: float) -> Acquired: ...
    def on_throttled(self, product: str, retry_after_s: float | None = None) -> float: ...


def make_limiter(
    system: str, client: redis.Redis, configured: float, burst: int, **adapt: float
) -> Limiter:
    """``system``'s limiter on a fresh key; ``adapt``: :class:`Limits` fields (project)."""
    prefix = f"cwbench-rl-{uuid.uuid4().hex[:8]}"
    if system == "aimd":
        return AimdLimiter(client, key=f"{prefix}:rl:bench:sms", rate=configured, burst=burst)
    limits = Limits(buckets={"sms": Bucket(configured, burst)}, min_rate_per_s=1.0,
                    **adapt)  # type: ignore[arg-type]  # fmt: skip
    return RateLimiter(client, limits, prefix=prefix, account="bench")


def set_sandbox(
    http: httpx.Client, sandbox_url: str, scenario: Scenario, latency_ms: float = LATENCY_MS
) -> None:
    http.post(f"{sandbox_url}/_sandbox/reset", json={}).raise_for_status()
    faults = {
        "latency_ms": latency_ms,
        "limit_per_s": scenario.limit_per_s,
        "limit_burst": 0,  # one second's worth
        "throttle_rate": scenario.throttle_rate,
        "seed": 18,
    }
    http.put(f"{sandbox_url}/_sandbox/faults", json=faults).raise_for_status()


def run_scenario(
    *,
    sandbox_url: str,
    redis_url: str,
    scenario: Scenario,
    system: str,
    seconds: float,
    warmup_s: float,
    threads: int = THREADS,
    latency_ms: float = LATENCY_MS,
    adapt: dict[str, float] | None = None,
    log: Callable[[str], None] = print,
) -> Result:
    """Send for ``seconds`` (s) through ``system``'s limiter; the row of this run.

    ``adapt``: :class:`worker.ratelimit.Limits` fields for the project's limiter
    (the tests shorten its window and recovery); the defaults otherwise.
    """
    http = httpx.Client(timeout=30.0)
    client = redis.Redis.from_url(redis_url)
    set_sandbox(http, sandbox_url, scenario, latency_ms)
    burst = max(1, int(scenario.configured_per_s / 5))  # 0.2 s of the configured rate
    limiter = make_limiter(system, client, scenario.configured_per_s, burst, **(adapt or {}))
    connectus = ConnectusClient(
        api_user=SANDBOX_USER, api_key=SANDBOX_KEY, base_url=sandbox_url,
        v1_base_url=sandbox_url, qr_base_url=sandbox_url, connect_timeout_s=3.0,
        read_timeout_s=10.0,
    )  # fmt: skip
    events: list[tuple[float, str]] = []  # (time, "sent" | "throttled" | "error" | "deferred")
    lock = threading.Lock()
    start = time.time()
    end = start + seconds

    def sender(k: int) -> None:
        mine: list[tuple[float, str]] = []
        i = 0
        while time.time() < end:
            try:
                limiter.acquire("sms", timeout_s=ACQUIRE_TIMEOUT_S)
            except RateLimitRefused as refused:
                mine.append((time.time(), "deferred"))
                time.sleep(min(refused.retry_in_ms / 1000, max(0.0, end - time.time())))
                continue
            i += 1
            try:
                connectus.v3.send_sms(dst_number=f"5698{k:03d}{i % 10_000:04d}",
                                      sms_content=f"bench {k} {i}")  # fmt: skip
            except (Throttled, RateLimited) as exc:
                mine.append((time.time(), "throttled"))
                limiter.on_throttled("sms", exc.retry_after_s)
            except ConnectusError:
                mine.append((time.time(), "error"))
            else:
                mine.append((time.time(), "sent"))
                if isinstance(limiter, AimdLimiter):  # the project's counts nothing
                    limiter.on_success("sms")
        with lock:
            events.extend(mine)

    lifter = None
    if scenario.lift_after_s is not None:

        def lift() -> None:
            time.sleep(scenario.lift_after_s or 0.0)
            http.put(f"{sandbox_url}/_sandbox/faults", json={"limit_per_s": 0}).raise_for_status()

        lifter = threading.Thread(target=lift, name="bench-lift")
        lifter.start()
    pool = [threading.Thread(target=sender, args=(k,), name=f"bench-{k}") for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if lifter is not None:
        lifter.join()
    charges = ledger_times(http, sandbox_url)
    connectus.close()
    http.close()
    client.close()
    result = summarise(scenario, system, start, seconds, warmup_s, threads, events, charges, log)
    result.latency_ms = latency_ms
    return result


def ledger_times(http: httpx.Client, sandbox_url: str) -> list[float]:
    """The ``at`` (epoch s) of every charge in the sandbox's ledger."""
    times: list[float] = []
    since = 0
    while True:
        page = http.get(
            f"{sandbox_url}/_sandbox/ledger", params={"since": since, "limit": 10_000}
        ).json()
        times += [float(c["at"]) for c in page["charges"]]
        if page["next"] >= page["total"] or not page["charges"]:
            return times
        since = page["next"]


def summarise(
    scenario: Scenario,
    system: str,
    start: float,
    seconds: float,
    warmup_s: float,
    threads: int,
    events: list[tuple[float, str]],
    charges: list[float],
    log: Callable[[str], None],
) -> Result:
    steady_from, end = start + warmup_s, start + seconds
    steady = [kind for t, kind in events if steady_from <= t < end]
    sends = sum(1 for k in steady if k in ("sent", "throttled", "error"))
    throttles = steady.count("throttled")
    accepted = sum(1 for t in charges if steady_from <= t < end)
    goodput = accepted / (seconds - warmup_s)
    per_second = [0] * int(seconds + 1)
    for t in charges:
        if start <= t < end:
            per_second[int(t - start)] += 1
    details: dict[str, Any] = {
        "configured_per_s": scenario.configured_per_s,
        "provider_limit_per_s": scenario.limit_per_s,
        "random_throttle_rate": scenario.throttle_rate,
        "seconds": seconds,
        "warmup_s": warmup_s,
        "threads": threads,
        "sends_per_s": round(sends / (seconds - warmup_s), 2),
        "throttles": throttles,
        "throttle_share": round(throttles / max(1, sends), 4),
        "deferrals": steady.count("deferred"),
        "errors": steady.count("error"),
        "charges_total": len(charges),
        "per_second": per_second[: int(seconds)],
    }
    if scenario.lift_after_s is not None:
        back = 0.9 * scenario.configured_per_s
        lifted = int(scenario.lift_after_s)
        first = next((s for s in range(lifted, int(seconds)) if per_second[s] >= back), None)
        details["recovery_s"] = None if first is None else first + 1 - scenario.lift_after_s
    result = Result(
        name=scenario.name,
        system=system,
        latency_ms=LATENCY_MS,
        processes=1,
        messages=accepted,
        msgs_per_s=goodput,
        details=details,
    )
    log(
        f"{scenario.name}/{system}: goodput {goodput:.1f}/s, sends {details['sends_per_s']}/s, "
        f"throttles {details['throttle_share'] * 100:.1f}% of sends, deferrals "
        f"{details['deferrals']}" + (
            f", recovery {details['recovery_s']} s" if "recovery_s" in details else ""
        )
    )  # fmt: skip
    return result


def run_all(
    *,
    sandbox_url: str,
    redis_url: str,
    seconds: float,
    warmup_s: float,
    recovery_s: float = 0.0,
    log: Callable[[str], None] = print,
) -> list[Result]:
    """Every scenario, the baseline then the project for each; the recovery one when
    ``recovery_s`` (its whole duration, s) is given."""
    plan = [(s, seconds) for s in SCENARIOS]
    if recovery_s:
        plan.append((RECOVERY, recovery_s))
    out = []
    for scenario, duration in plan:
        for system in SYSTEMS:
            out.append(
                run_scenario(sandbox_url=sandbox_url, redis_url=redis_url, scenario=scenario,
                             system=system, seconds=duration, warmup_s=warmup_s, log=log)
            )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.adaptive``: one custom scenario, both systems, on a private
    Redis and sandbox (``make bench`` runs the fixed ones)."""
    import argparse

    from bench.harness import Bench

    parser = argparse.ArgumentParser(prog="python -m bench.adaptive", description=main.__doc__)
    parser.add_argument("--configured", type=float, default=50.0, help="RATE_SMS_PER_S (sends/s)")
    parser.add_argument("--limit-per-s", type=float, default=0.0, help="provider limit (sends/s)")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="random throttle share")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--warmup-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    name = f"ratelimit_limit{args.limit_per_s:g}_noise{args.throttle_rate:g}_cfg{args.configured:g}"
    scenario = Scenario(name, args.configured, limit_per_s=args.limit_per_s,
                        throttle_rate=args.throttle_rate)  # fmt: skip
    with Bench() as bench:
        for system in SYSTEMS:
            run_scenario(sandbox_url=bench.sandbox_url, redis_url=bench.redis_url,
                         scenario=scenario, system=system, seconds=args.seconds,
                         warmup_s=args.warmup_s)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
