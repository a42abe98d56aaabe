"""The console's reads with 1,000,000 job records and 50 campaigns in Redis (issue 22).

Loads, under a key prefix of its own (deleted afterwards), ``jobs`` finished job
records of the shape the scripts write (:func:`_record`: the fields of
``producers/api.py``'s record, a claim and a finish, two events), their search
index entries (``ledger/lua/lib_index.lua``: every recipient, the idempotency keys
of half the single sends, correlation ids of a quarter), ``campaigns`` campaigns
with their counts (60 % of the jobs are theirs), a day of per-minute history, and
a few queued messages. The records are written by a script, 5,000 a call
(``bench/lua/console_load.lua``): pipelined from Python, 1,000,000 took minutes.
Then times, with nothing else running, ``ledger.lookup.find_jobs`` (a mix of job
ids, keys, correlation ids, full numbers and misses), ``ledger.lookup.job_history``,
``ledger.history.series`` (hour, day) and ``ledger.queue_stats.queue_stats``: p50
and p99 of ``samples`` calls each.

``PAGES`` is the hook for the console's pages (the overview's render): each
``name -> render(client, keys)`` is timed the same way as a row
``console_page_<name>``. Run alone: ``python -m bench.console_bench [JOBS]``.
"""

from __future__ import annotations

import json
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from bench.rows import Result, percentile
from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.ledger.history import series
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.lookup import find_jobs, job_history
from connectus_worker.ledger.queue_stats import queue_stats
from connectus_worker.luascript import load as load_script

#: The console's pages to time: name -> render(client, keys).
PAGES: dict[str, Callable[[redis.Redis, Keys], object]] = {}


def _overview(client: redis.Redis, keys: Keys) -> str:
    """The console's overview as a refresh renders it: its reads, then its template."""
    from connectus_worker.config import Settings
    from connectus_worker.service.console.overview import read_overview
    from connectus_worker.service.console.views import render

    overview = read_overview(client, keys, Settings(key_prefix=keys.prefix))
    return render("overview_live.html", o=overview)


PAGES["overview"] = _overview
QUEUES = ("otp", "transactional", "bulk")
TTL_S = 7 * 86_400
BATCH = 5_000
KEY = secrets.token_bytes(32)  # a CONTENT_HASH_KEY of the run's own
LOAD = load_script(__package__, "console_load.lua")


def _number(i: int) -> str:
    return f"5699{i % 10_000_000:07d}"


def _record(i: int, now_ms: int, campaigns: int) -> tuple[str, dict[str, Any]]:
    """Job ``i``'s id and record; 60 % of them a campaign's (ids ``<cid>-<index>``)."""
    created = now_ms - (i % 86_400) * 1000
    if campaigns and i % 5 < 3:
        cid = f"cmp{i % campaigns:02d}bench000000"
        job_id, key = f"{cid}-{i}", f"campaign:{cid}:{i}"
        extra: dict[str, Any] = {"campaign": cid}
    else:
        job_id, key = f"{i:032x}", f"order-{i}" if i % 2 == 0 else f"job:{i:032x}"
        extra = {"tenant": "default", "fingerprint": f"{i:064x}"}
        if i % 4 == 1:
            extra["correlation_id"] = f"req-{i}"
    number = _number(i)
    record = {
        "job_id": job_id, "kind": "sms", "queue": "transactional", "idempotency_key": key,
        "dst": f"{number[:3]}*****{number[-3:]}", "attempts": 1, "fence": 1, "segments": 1,
        "created_at": created, "updated_at": created + 900, "state": "sent", "outcome": "sent",
        "provider_id": str(10_000_000 + i), "sent_at": created + 900, "worker": "pod-1:7:ab12cd34",
        "lease_until": created + 30_400, "claim_token": f"{i:032x}", "ev_n": 2,
        "ev:0": f"0|{created}|queued|", "ev:1": f"1|{created + 900}|sent|attempt 1", **extra,
    }  # fmt: skip
    return job_id, record


def load(client: redis.Redis, keys: Keys, *, jobs: int, campaigns: int, now_ms: int) -> None:
    """Write the records and index entries (``bench/lua/console_load.lua``, 5,000 a call),
    then the campaigns, a day of history and the queues (one pipeline)."""
    script = client.register_script(LOAD)
    for start in range(0, jobs, BATCH):
        digests = [
            recipient_digest(KEY, _number(i)) for i in range(start, min(start + BATCH, jobs))
        ]
        script(args=[keys.prefix, now_ms, TTL_S, campaigns, start, *digests])
    pipe = client.pipeline(transaction=False)
    for c in range(campaigns):
        cid = f"cmp{c:02d}bench000000"
        pipe.hset(keys.campaign(cid), mapping={"campaign_id": cid, "state": "running",
                  "kind": "sms", "total": jobs // campaigns, "cursor": 1, "chunks": 10,
                  "created_at": now_ms, "tenant": "default"})  # fmt: skip
        pipe.hset(keys.campaign_counts(cid), mapping={"sent": jobs // campaigns, "queued": 0})
        pipe.zadd(keys.campaigns, {cid: now_ms - c})
        pipe.sadd(keys.active_campaigns, cid)
    rng = random.Random(7)
    now_s = now_ms // 1000
    for hour in range(now_s // 3600 * 3600 - 25 * 3600, now_s + 1, 3600):
        fields = {m: f"{rng.randint(0, 900)},{rng.randint(0, 30)},{rng.randint(0, 5)}"
                  for m in range(60)}  # fmt: skip
        pipe.hset(keys.history(hour), mapping=fields)
    for queue in QUEUES:
        for n in range(100):
            mid = f"{queue}-{n}"
            pipe.hset(keys.queue_messages(queue), mid,
                      json.dumps({"message_timestamp": now_ms - 60_000 + n}))  # fmt: skip
            pipe.rpush(keys.queue(queue), mid)
    pipe.execute()


def delete(client: redis.Redis, prefix: str) -> None:
    """Remove every key of the run's prefix (off the timed path)."""
    batch: list[bytes] = []
    # The prefix is the run's own (random): its Dramatiq namespace ({prefix}-dramatiq) too.
    for name in client.scan_iter(match=f"{prefix}*", count=10_000):
        batch.append(name)
        if len(batch) >= 10_000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def _timed(fn: Callable[[], object], samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _queries(jobs: int, campaigns: int, samples: int, now_ms: int) -> list[str]:
    """A mix: job ids, idempotency keys, correlation ids, full numbers, misses."""
    rng = random.Random(11)
    out = []
    while len(out) < samples:
        i = rng.randrange(jobs)
        job_id, record = _record(i, now_ms, campaigns)
        out += [job_id, str(record["idempotency_key"]), "+56 9 " + _number(i)[3:]]
        out.append(str(record.get("correlation_id", f"56987{rng.randrange(10**6):06d}")))
    return out[:samples]


def _memory(client: redis.Redis, keys: Keys, jobs: int, campaigns: int, now_ms: int) -> dict:
    """Bytes per job (MEMORY USAGE of a sample): the record, and its index entries."""
    rng = random.Random(3)
    sample = [rng.randrange(jobs) for _ in range(min(500, jobs))]
    record_b = index_b = 0
    for i in sample:
        job_id, record = _record(i, now_ms, campaigns)
        record_b += client.memory_usage(keys.job(job_id)) or 0
        index_b += client.memory_usage(keys.find_recipient(recipient_digest(KEY, _number(i)))) or 0
        if str(record["idempotency_key"]).startswith("order-"):
            index_b += client.memory_usage(keys.find_idempotency(str(record["idempotency_key"])))
        if "correlation_id" in record:
            index_b += client.memory_usage(keys.find_correlation(str(record["correlation_id"])))
    used = client.info("memory")["used_memory"]
    return {
        "record_bytes_per_job": record_b / len(sample),
        "index_bytes_per_job": index_b / len(sample),
        "redis_used_memory_mb": used / 2**20,
    }


def run_console(
    redis_url: str,
    *,
    jobs: int,
    campaigns: int = 50,
    samples: int = 400,
    log: Callable[[str], None] = print,
) -> list[Result]:
    """The console rows (see the module doc); the data is deleted before returning."""
    client = redis.Redis.from_url(redis_url)
    keys = Keys(f"cwbench-console-{secrets.token_hex(4)}")
    now_ms = int(time.time() * 1000)
    try:
        started = time.monotonic()
        load(client, keys, jobs=jobs, campaigns=campaigns, now_ms=now_ms)
        loaded_s = time.monotonic() - started
        log(f"console: {jobs:,} records and {campaigns} campaigns loaded in {loaded_s:.1f} s")
        memory = _memory(client, keys, jobs, campaigns, now_ms)
        queries = iter(_queries(jobs, campaigns, samples, now_ms))
        found: list[str] = []

        def find() -> None:
            found.extend(find_jobs(client, keys, next(queries), content_hash_key=KEY, limit=20))

        timings = {"find": _timed(find, samples)}
        ids = iter(found * (samples // max(1, len(found)) + 1))
        timings["history"] = _timed(lambda: job_history(client, keys, next(ids)), samples)
        for span in ("hour", "day"):
            timings[f"series_{span}"] = _timed(
                lambda s=span: series(client, keys, now_s=time.time(), span=s),
                samples,  # type: ignore[misc]
            )
        timings["queue_stats"] = _timed(
            lambda: queue_stats(client, keys, QUEUES, now_ms=int(time.time() * 1000)), samples
        )
        for name, render in PAGES.items():
            timings[f"page_{name}"] = _timed(lambda r=render: r(client, keys), samples)  # type: ignore[misc]
        hits = len(found)
        index_bytes = memory["index_bytes_per_job"]
        details = {**memory, "load_s": round(loaded_s, 1), "samples": samples,
                   "campaigns": campaigns, "found_ids": hits}  # fmt: skip
        return [
            Result(
                name=f"console_{what}",
                system="project",
                latency_ms=None,
                processes=1,
                messages=jobs,
                p50_ms=statistics.median(t),
                p99_ms=percentile(t, 99),
                redis_bytes_per_recipient=index_bytes if what == "find" else None,
                details=details,
            )
            for what, t in timings.items()
        ]
    finally:
        delete(client, keys.prefix)
        client.close()


def main(argv: list[str]) -> None:
    from bench.harness import Bench

    jobs = int(argv[0]) if argv else 1_000_000
    with Bench() as bench:
        for row in run_console(bench.redis_url, jobs=jobs):
            print(row.name, f"p50 {row.p50_ms:.2f} ms p99 {row.p99_ms:.2f} ms", row.details)


if __name__ == "__main__":
    main(sys.argv[1:])
