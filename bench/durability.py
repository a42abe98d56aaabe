"""``python -m bench.durability [--messages N]``: what a confirmed claim costs, and
Redis CPU per message (docs/scaling.md, docs/reliability.md "Durable claims").

One run, two modes on the same machine and the same two Redis nodes (a primary
and its replica on loopback, each with ``appendfsync always``):

- ``unconfirmed``: ``REDIS_MIN_REPLICAS=0`` (Redis 7.0 has no ``WAITAOF``, so no wait);
- ``wait``: ``REDIS_MIN_REPLICAS=1``: every enqueue, claim and deferral waits for
  the replica's acknowledgement (``WAIT 1``).

For each mode it measures

1. the claim's round trip, one thread, N fresh jobs (``JobStore.claim``): what WAIT
   adds to each message's send path;
2. a drain through the real system: N SMS queued with the workers stopped, then
   ``connectus worker`` (2 processes x 16 threads) against the sandbox at 0 ms
   latency until every job is finished. The primary's ``used_cpu_sys + used_cpu_user``
   (INFO cpu) over the drain, divided by N, is Redis CPU per message sent (its
   commands: ``redis_commands_per_msg``), over the enqueues Redis CPU per
   enqueue; the inverse of their sum is messages per second per Redis core.

Prints one JSON object per mode; the figures in the docs come from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from typing import Any

import httpx
import redis

from connectus_worker.config import Settings, load_settings
from connectus_worker.durability import Durability
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from devtools.embedded_redis import RedisServer
from devtools.stack import LocalStack

ENV = {
    "RATE_SMS_PER_S": "100000",
    "RATE_SMS_BURST": "100000",
    "DST_CAP_COUNT": "0",
    "LOG_LEVEL": "WARNING",
}


def redis_cpu_s(client: redis.Redis) -> float:
    """The server's CPU time so far (s): system + user, all its threads."""
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def claim_round_trips_us(settings: Settings, n: int) -> dict[str, float]:
    """Median and p99 of one claim's round trip (µs), on ``n`` fresh job records."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(f"bench{uuid.uuid4().hex[:6]}")
    store = JobStore(client, keys, ttl_s=600, durability=Durability.from_settings(settings))
    ids = [f"job-{i}" for i in range(n)]
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hset(keys.job(job_id), mapping={"state": "queued", "attempts": 0, "fence": 0})
    pipe.execute()
    message = new_message("transactional", "send_sms", {"job_id": "x", "payload": {}})
    samples = []
    for job_id in ids:
        started = time.perf_counter()
        store.claim(job_id, worker_id="bench", lease_ms=60_000, token=job_id, message=message)
        samples.append((time.perf_counter() - started) * 1e6)
    for start in range(0, n, 500):
        client.delete(*(keys.job(j) for j in ids[start : start + 500]))
    client.delete(keys.leases, keys.inflight_messages)
    samples.sort()
    return {"median_us": round(statistics.median(samples), 1),
            "p99_us": round(samples[int(len(samples) * 0.99) - 1], 1)}  # fmt: skip


def drain(primary: RedisServer, mode_env: dict[str, str], n: int) -> dict[str, Any]:
    """N SMS through real workers; the primary's CPU per message over the drain."""
    stack = LocalStack(redis_url=primary.url, env={**ENV, **mode_env},
                       sandbox_flags={"latency_ms": 0}, processes=2, threads=16,
                       start_workers=False)  # fmt: skip
    with stack:
        producer = Producer(stack.settings)
        client = redis.Redis.from_url(primary.url)
        cpu_before, started = redis_cpu_s(client), time.perf_counter()
        for i in range(n):
            producer.send_sms(f"569{80000000 + i:08d}", f"bench {i}")
        enqueue_s, enqueue_cpu = time.perf_counter() - started, redis_cpu_s(client) - cpu_before
        leases = Keys(stack.settings.key_prefix).leases
        commands = int(client.info("stats")["total_commands_processed"])
        cpu_before, started = redis_cpu_s(client), time.perf_counter()
        stack.start_worker_supervisor()
        with httpx.Client(base_url=stack.sandbox_url) as http:
            while int(http.get("/_sandbox/stats").json()["charges"]) < n:
                time.sleep(0.05)  # polling the sandbox costs Redis nothing
        while client.zcard(leases):  # the last finishing writes
            time.sleep(0.01)
        seconds, cpu = time.perf_counter() - started, redis_cpu_s(client) - cpu_before
        commands = int(client.info("stats")["total_commands_processed"]) - commands
        stack.stop_worker_supervisor()
        producer.redis.close()
    return {
        "enqueue_us_per_msg": round(enqueue_s / n * 1e6, 1),
        "drain_msgs_per_s": round(n / seconds, 1),
        "redis_cpu_us_per_enqueue": round(enqueue_cpu / n * 1e6, 1),
        "redis_cpu_us_per_msg": round(cpu / n * 1e6, 1),
        "redis_commands_per_msg": round(commands / n, 1),
        "msgs_per_s_per_redis_core": round(n / (cpu + enqueue_cpu)) if cpu else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durability", description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--replica-fsync", choices=("always", "everysec"), default="always")
    # everysec: Redis CPU without an fsync per write (not durable: docs/deployment.md).
    parser.add_argument("--primary-fsync", choices=("always", "everysec"), default="always")
    args = parser.parse_args(argv)
    with RedisServer(appendonly=True, args=["--appendfsync", args.primary_fsync]) as primary:
        follow = ["--replicaof", "127.0.0.1", str(primary.port)]
        replica = RedisServer(appendonly=True, args=[*follow, "--appendfsync", args.replica_fsync])
        with replica:
            for mode, replicas in (("unconfirmed", "0"), ("wait", "1")):
                mode_env = {"REDIS_MIN_REPLICAS": replicas}
                settings = load_settings({"REDIS_URL": primary.url, **mode_env},
                                         require_keys=False)  # fmt: skip
                result = {"mode": mode, "primary_fsync": args.primary_fsync,
                          "replica_fsync": args.replica_fsync,
                          "messages": args.messages,
                          "claim": claim_round_trips_us(settings, args.messages),
                          **drain(primary, mode_env, args.messages)}  # fmt: skip
                print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
