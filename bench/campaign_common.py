"""What the campaign benchmarks share: rows, Redis snapshots, the key prefix, the input CSV.

Split from :mod:`bench.campaign_bench` (size guideline), which describes the
scenarios and the method.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "Hola {name}"
DAY_MS = 86_400_000
#: Environment of the end-to-end runs: limits far above any rate reached here.
BULK_ENV = {
    "RATE_SMS_PER_S": "100000",
    "RATE_SMS_BURST": "100000",
    "CAMPAIGN_MAX_PENDING": "50000",
}
#: The sandbox's status steps (EN_COLA -> ... -> ENTREGADO) an hour apart: its
#: scheduler would otherwise spend CPU on every message during the run.
# v1_params=any: the ceiling posts a 1,000-message bulk as a form body, which
# no query string can carry (the worker sends query strings, in URL-sized calls).
SANDBOX_FLAGS = {"step_delay_s": 3600, "v1_params": "any"}
# Commands the benchmark itself sends while measuring.
_OWN_COMMANDS = {"info", "memory|usage", "client|setinfo", "hello", "ping", "scan"}

# -- rows -------------------------------------------------------------------------------


def make_row(
    name: str,
    system: str,
    *,
    messages: int,
    seconds: float,
    latency_ms: float | None = None,
    processes: int | None = 1,
    p50_ms: float | None = None,
    p99_ms: float | None = None,
    cpu_s: float | None = None,
    peak_rss_mb: float | None = None,
    redis_cmds: int | None = None,
    redis_bytes: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A row in the shape of ``bench/results.json`` (+ ``seconds``, ``note``)."""

    def r(x: float | None, digits: int) -> float | None:
        return None if x is None else round(x, digits)

    per = max(messages, 1)
    row: dict[str, Any] = {
        "name": name,
        "system": system,
        "latency_ms": latency_ms,
        "processes": processes,
        "messages": messages,
        "msgs_per_s": r(messages / seconds if seconds > 0 else None, 1),
        "p50_ms": r(p50_ms, 1),
        "p99_ms": r(p99_ms, 1),
        "cpu_s_per_1k": r(None if cpu_s is None else cpu_s / per * 1000, 3),
        "peak_rss_mb": r(peak_rss_mb, 1),
        # 4 decimals: an accepted recipient costs a thousandth of a command
        "redis_cmds_per_msg": r(None if redis_cmds is None else redis_cmds / per, 4),
        "redis_bytes_per_recipient": r(None if redis_bytes is None else redis_bytes / per, 1),
        "seconds": round(seconds, 3),
    }
    if note:
        row["note"] = note
    return row


# -- Redis ----------------------------------------------------------------------------


def redis_snapshot(client: redis.Redis) -> dict[str, Any]:
    """Commands by name, ``used_memory`` and Redis CPU seconds."""
    stats = client.info("commandstats")
    cmds = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    memory = client.info("memory")
    cpu = client.info("cpu")
    return {
        "cmds": cmds,
        "used_memory": int(memory["used_memory"]),
        "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        "t": time.monotonic(),
    }


def redis_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{"cmds": {name: calls}, "calls", "bytes", "cpu_s"}`` between two snapshots."""
    cmds = {}
    for name, calls in after["cmds"].items():
        delta = calls - before["cmds"].get(name, 0)
        if delta and name not in _OWN_COMMANDS:
            cmds[name] = delta
    return {
        "cmds": dict(sorted(cmds.items(), key=lambda kv: -kv[1])),
        "calls": sum(cmds.values()),
        "bytes": after["used_memory"] - before["used_memory"],
        "cpu_s": after["cpu_s"] - before["cpu_s"],
    }


def keys_under(client: redis.Redis, pattern: str) -> Iterator[bytes]:
    yield from client.scan_iter(match=pattern, count=10_000)


def memory_of(client: redis.Redis, keys: list[bytes]) -> int:
    """Σ ``MEMORY USAGE key SAMPLES 0`` (exact) of ``keys``."""
    total = 0
    for lo in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for key in keys[lo : lo + 1000]:
            pipe.memory_usage(key, samples=0)
        total += sum(int(n or 0) for n in pipe.execute())
    return total


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key starting with ``prefix`` (this run's own); returns how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in keys_under(client, f"{prefix}*"):
        batch.append(key)
        if len(batch) == 5000:
            deleted += int(client.delete(*batch))
            batch = []
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


def new_prefix(what: str) -> str:
    return f"cwcb-{what}-{uuid.uuid4().hex[:10]}"


# -- input ------------------------------------------------------------------------------


def number(i: int) -> str:
    """A distinct valid Chilean mobile (``5698nnnnnnn``) per index below 10,000,000."""
    return f"5698{i:07d}"


def recipients_csv(workdir: Path, n: int) -> Path:
    """``recipients_<n>.csv`` (``dst_number,name``) in ``workdir``, written once."""
    path = workdir / f"recipients_{n}.csv"
    if path.is_file():
        return path
    if n > 10_000_000:
        raise ValueError("at most 10,000,000 distinct numbers")
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        out.write("dst_number,name\n")
        for lo in range(0, n, 100_000):
            hi = min(n, lo + 100_000)
            out.write("".join(f"{number(i)},Cliente {i}\n" for i in range(lo, hi)))
    tmp.replace(path)
    return path
