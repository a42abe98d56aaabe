"""The accept scenarios: ``campaign_accept_csv`` (the project) and
``campaign_accept_naive`` (one Dramatiq send per recipient), each measured in a
child process (:mod:`bench.campaign_bench` describes the method).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from bench import procstats
from bench.campaign_common import (
    DAY_MS,
    ROOT,
    TEMPLATE,
    delete_prefix,
    keys_under,
    make_row,
    memory_of,
    new_prefix,
    recipients_csv,
    redis_delta,
    redis_snapshot,
)

# -- child processes (accept scenarios) ---------------------------------------------------


def _vm_hwm_mb() -> float:
    return procstats.status_kb(os.getpid(), "VmHWM") / 1024


def child_accept(
    redis_url: str, prefix: str, path: Path, *, profile: bool = False
) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    from connectus_worker.campaign.options import CampaignOptions
    from connectus_worker.config import load_settings
    from connectus_worker.ledger.keys import Keys
    from connectus_worker.producers.campaigns import CampaignProducer

    settings = load_settings(
        {
            "REDIS_URL": redis_url,
            "KEY_PREFIX": prefix,
            "CONNECTUS_API_USER": "bench",
            "CONNECTUS_API_KEY": "bench",
        }
    )
    producer = CampaignProducer(settings)  # no balance lookup
    client = producer.redis
    client.ping()
    options = CampaignOptions(
        name="bench accept", text=TEMPLATE, deliver_at=datetime.now(UTC) + timedelta(days=1)
    )
    profiler = cProfile.Profile() if profile else None
    before = redis_snapshot(client)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    accepted = producer.send(path, options)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    after = redis_snapshot(client)
    keys = Keys(prefix)
    own = [k for k in keys_under(client, f"{keys.campaign(accepted.campaign_id)}*")]
    report = accepted.plan.report
    out: dict[str, Any] = {
        "recipients": report.valid,
        "rows": report.rows,
        "invalid": len(report.invalid),
        "duplicates": report.duplicates,
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": _vm_hwm_mb(),
        "redis": redis_delta(before, after),
        "keys": len(own),
        "keys_bytes": memory_of(client, own),
        "campaign_id": accepted.campaign_id,
    }
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(15)
        out["profile"] = text.getvalue()
    return out


def child_naive(redis_url: str, namespace: str, path: Path, limit: int) -> dict[str, Any]:
    os.environ["BENCH_CAMPAIGN_REDIS_URL"] = redis_url
    os.environ["BENCH_CAMPAIGN_NAMESPACE"] = namespace
    from bench import campaign_baseline

    client = redis.Redis.from_url(redis_url)
    campaign_baseline.broker.client.ping()  # connect before the clock starts
    before = redis_snapshot(client)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    sent = campaign_baseline.enqueue_csv(path, delay_ms=DAY_MS, limit=limit)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    after = redis_snapshot(client)
    own = list(keys_under(client, f"{namespace}:*"))
    return {
        "recipients": sent,
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": _vm_hwm_mb(),
        "redis": redis_delta(before, after),
        "keys": len(own),
        "keys_bytes": memory_of(client, own),
    }


def _run_child(args: list[str], *, workdir: Path, timeout_s: float) -> dict[str, Any]:
    out = workdir / f"child-{uuid.uuid4().hex[:8]}.json"
    cmd = [sys.executable, "-m", "bench.campaign_bench", "--child", *args, "--child-out", str(out)]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(
            f"{' '.join(cmd[3:])} failed ({done.returncode}):\n{done.stdout[-2000:]}"
            f"{done.stderr[-4000:]}"
        )
    try:
        data: dict[str, Any] = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    return data


# -- scenarios ----------------------------------------------------------------------------


def accept_project(
    *, redis_url: str, workdir: Path, n: int, profile: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``campaign_accept_csv``: the row and its details."""
    path = recipients_csv(workdir, n)
    prefix = new_prefix("accept")
    client = redis.Redis.from_url(redis_url)
    args = ["accept", "--redis-url", redis_url, "--prefix", prefix, "--csv", str(path)]
    try:
        data = _run_child(
            [*args, *(["--profile"] if profile else [])], workdir=workdir, timeout_s=900
        )
    finally:
        delete_prefix(client, prefix)
        client.close()
    recipients = data["recipients"]
    if recipients != n:
        raise RuntimeError(f"accepted {recipients} of {n} recipients: {data}")
    redis_d = data["redis"]
    row = make_row(
        "campaign_accept_csv",
        "project",
        messages=recipients,
        seconds=data["seconds"],
        cpu_s=data["cpu_s"],
        peak_rss_mb=data["peak_rss_mb"],
        redis_cmds=redis_d["calls"],
        redis_bytes=redis_d["bytes"],
    )
    details = {
        "csv": str(path),
        "csv_mb": round(path.stat().st_size / 2**20, 1),
        "commands_per_recipient": {k: round(v / n, 4) for k, v in redis_d["cmds"].items()},
        "redis_cpu_s": round(redis_d["cpu_s"], 3),
        "keys": data["keys"],
        "own_keys_bytes_per_recipient": round(data["keys_bytes"] / n, 1),
        "cpu_share_of_wall": round(data["cpu_s"] / data["seconds"], 2),
        "prefix": prefix,
    }
    if "profile" in data:
        details["profile"] = data["profile"]
    return row, details


def accept_naive(
    *, redis_url: str, workdir: Path, n: int, limit: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``campaign_accept_naive``: the row and its details."""
    path = recipients_csv(workdir, n)
    namespace = new_prefix("naive")
    client = redis.Redis.from_url(redis_url)
    args = ["naive", "--redis-url", redis_url, "--prefix", namespace, "--csv", str(path)]
    try:
        data = _run_child([*args, "--limit", str(limit)], workdir=workdir, timeout_s=1800)
    finally:
        delete_prefix(client, namespace)
        client.close()
    sent = data["recipients"]
    redis_d = data["redis"]
    note = None
    if sent < n:
        note = (
            f"measured on the first {sent:,} of the {n:,} rows (all {n:,} would take "
            f"about {n / (sent / data['seconds']):.0f} s at this rate)"
        )
    row = make_row(
        "campaign_accept_naive",
        "baseline",
        messages=sent,
        seconds=data["seconds"],
        cpu_s=data["cpu_s"],
        peak_rss_mb=data["peak_rss_mb"],
        redis_cmds=redis_d["calls"],
        redis_bytes=redis_d["bytes"],
        note=note,
    )
    details = {
        "commands_per_recipient": {k: round(v / sent, 4) for k, v in redis_d["cmds"].items()},
        "redis_cpu_s": round(redis_d["cpu_s"], 3),
        "keys": data["keys"],
        "own_keys_bytes_per_recipient": round(data["keys_bytes"] / sent, 1),
        "cpu_share_of_wall": round(data["cpu_s"] / data["seconds"], 2),
        "enqueue": "send_with_options(args=(dst, text), delay=24 h), default middleware",
        "prefix": namespace,
    }
    return row, details
