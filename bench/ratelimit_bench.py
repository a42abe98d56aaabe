"""Benchmark of the shared token bucket: N OS processes draining one bucket on a real Redis.

    python -m bench.ratelimit_bench --rate 200 --processes 4 --seconds 5 [--burst 20]
        [--redis-url redis://127.0.0.1:6379/0] [--json bench-ratelimit.json]

Every process loops ``acquire()`` (Redis's clock, as in production) and
records, per grant, the bucket time of its token and the local time it went
on (after sleeping the returned wait). Printed and written as JSON:

- achieved rate (tokens/s) vs the target, from the local send times;
- the worst burst: max over every window ``[t_i, t_j]`` of
  ``count - rate x length`` (the bucket promises <= ``burst``);
- Redis commands per grant from ``INFO commandstats`` deltas (server-wide:
  run it on a quiet Redis) and acquire calls per grant counted by the clients;
- lateness of the sends behind their tokens (ms), i.e. sleep overshoot.

The integration test (tests/integration/test_ratelimit_redis.py) runs the same
:func:`run` with a smaller budget and asserts on its result.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis

from connectus_worker.worker.ratelimit import Bucket, Limits, RateLimiter


def _worker(
    url: str, prefix: str, rate: float, burst: int, start: Any, end_ms: Any, out: Any
) -> None:
    client = redis.Redis.from_url(url)
    limits = Limits(buckets={"sms": Bucket(rate, burst)}, min_rate_per_s=min(1.0, rate))
    limiter = RateLimiter(client, limits, prefix=prefix, account="bench")
    grants: list[tuple[float, float]] = []
    calls = 0
    client.ping()  # connect (and CLIENT SETINFO) before the measurement starts
    out.put(("ready", os.getpid()))
    start.wait()
    while True:
        calls += 1
        token = limiter.acquire("sms", timeout_s=5)
        sent_ms = time.time() * 1000
        if token.granted_at_ms > end_ms.value:
            break
        grants.append((token.granted_at_ms, sent_ms))
    client.close()
    out.put((os.getpid(), calls, grants))


def worst_burst(times: Sequence[float], rate: float) -> float:
    """max over i <= j of (j - i + 1) - rate * (t_j - t_i) / 1000, in O(n); times sorted, ms."""
    best, worst = float("-inf"), float("-inf")
    for j, t in enumerate(times):
        best = max(best, rate * t / 1000 - j)  # the best window start so far
        worst = max(worst, j - rate * t / 1000 + best + 1)
    return worst


# What the ACQUIRE script runs per call (plus ZREMRANGEBYSCORE/ZCARD/ZADD with a dst cap).
_IN_SCRIPT = ("time", "hmget", "hset", "pexpire")


def _commandstats(client: redis.Redis) -> dict[str, int]:
    """Calls per command, plus ``usec:evalsha`` (server CPU time of the scripts, µs)."""
    stats = client.info("commandstats")
    calls = {name: int(v["calls"]) for name, v in stats.items()}
    calls["usec:evalsha"] = int(stats.get("cmdstat_evalsha", {}).get("usec", 0))
    return calls


def run(
    url: str, *, rate: float, burst: int, processes: int, seconds: float, prefix: str | None = None
) -> dict[str, Any]:
    """Drive one bucket from ``processes`` processes for ``seconds`` (s); return the figures."""
    prefix = prefix or f"cwbench-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(url)
    ctx = mp.get_context("spawn")  # no fork of a threaded parent
    start, out, end_ms = ctx.Event(), ctx.Queue(), ctx.Value("d", 0.0)
    procs = [
        ctx.Process(target=_worker, args=(url, prefix, rate, burst, start, end_ms, out))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:  # spawned interpreters take a while to import
            assert out.get(timeout=60)[0] == "ready"
        before = _commandstats(client)
        seconds_now, micros = client.time()
        end_ms.value = seconds_now * 1000 + micros / 1000 + seconds * 1000
        start.set()
        results = [out.get(timeout=seconds + 60) for _ in procs]
        after = _commandstats(client)
    finally:
        for proc in procs:
            proc.join(timeout=10)
        client.delete(f"{prefix}:rl:bench:sms")
    grants = sorted(g for _, _, gs in results for g in gs)
    calls = sum(c for _, c, _ in results)
    granted = [g for g, _ in grants]
    sent = sorted(s for _, s in grants)
    lateness = sorted(s - g for g, s in grants)
    steady = sent[burst:]
    achieved = (len(steady) - 1) / ((steady[-1] - steady[0]) / 1000)
    usec = after.pop("usec:evalsha") - before.pop("usec:evalsha")
    commands = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    return {
        "target_rate_per_s": rate,
        "burst": burst,
        "processes": processes,
        "seconds": seconds,
        "grants": len(grants),
        "achieved_rate_per_s": round(achieved, 2),
        "rate_error_pct": round((achieved - rate) / rate * 100, 2),
        "worst_burst_bucket_time": round(worst_burst(granted, rate), 3),
        "worst_burst_send_time": round(worst_burst(sent, rate), 3),
        "acquire_calls": calls,
        "acquire_calls_per_grant": round(calls / len(grants), 4),
        # Server-wide deltas: other clients of the same Redis add to them.
        "evalsha_per_grant": round(commands.get("cmdstat_evalsha", 0) / len(grants), 4),
        "script_commands_per_grant": round(
            sum(commands.get(f"cmdstat_{c}", 0) for c in _IN_SCRIPT) / len(grants), 3
        ),
        "redis_commands_per_grant": round(sum(commands.values()) / len(grants), 3),
        "redis_usec_per_evalsha": round(usec / max(1, commands.get("cmdstat_evalsha", 0)), 2),
        "redis_commands": commands,
        "early_sends": sum(1 for x in lateness if x < -1.0),
        "lateness_ms": {
            "p50": round(statistics.median(lateness), 2),
            "p99": round(lateness[int(len(lateness) * 0.99) - 1], 2),
            "max": round(lateness[-1], 2),
        },
        "pids": sorted(pid for pid, _, gs in results if gs),  # processes that got tokens
        "grants_data": grants,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "redis": client.info("server")["redis_version"],
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit_bench")
    parser.add_argument("--rate", type=float, required=True, help="target rate, tokens/s")
    parser.add_argument("--burst", type=int, default=None, help="bucket size (default: rate/10)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    default_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-url", default=default_url)
    parser.add_argument("--json", default="bench-ratelimit.json", help="where to write the result")
    args = parser.parse_args(argv)
    burst = args.burst or max(1, int(args.rate / 10))
    result = run(args.redis_url, rate=args.rate, burst=burst, processes=args.processes,
                 seconds=args.seconds)  # fmt: skip
    summary = {k: v for k, v in result.items() if k not in ("grants_data", "pids")}
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    print(f"target {args.rate:g}/s, burst {burst}, {args.processes} processes, {args.seconds:g} s")
    print(f"achieved {result['achieved_rate_per_s']}/s ({result['rate_error_pct']:+}%), "
          f"{result['grants']} grants")  # fmt: skip
    print(f"worst burst: {result['worst_burst_bucket_time']} (bucket time), "
          f"{result['worst_burst_send_time']} (send time); bucket allows {burst}")  # fmt: skip
    print(f"round trips/grant {result['acquire_calls_per_grant']} (client count); "
          f"server EVALSHA/grant {result['evalsha_per_grant']}, commands inside the script/grant "
          f"{result['script_commands_per_grant']}, all commands/grant "
          f"{result['redis_commands_per_grant']} (server-wide); "
          f"Redis CPU per EVALSHA {result['redis_usec_per_evalsha']} µs")  # fmt: skip
    print(f"lateness ms {result['lateness_ms']}; early sends {result['early_sends']}")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
