"""Campaign benchmarks (issues #4 and #5): accepting a list, and sending it through v1 bulk.

``python -m bench.campaign_bench [--quick]`` prints a table and writes
``bench/campaign_results.json``; :func:`run_campaign_scenarios` returns the
same rows for ``python -m bench``. Rows have the fields of
``bench/results.json`` (null where not measured) plus ``seconds`` (the
measured wall time) and, where it matters, ``note``.

Scenarios (full size; ``--quick`` runs 1/20 of each):

``campaign_accept_csv`` (project)
    ``CampaignProducer(settings).send(csv, CampaignOptions(name, "Hola {name}",
    deliver_at=tomorrow))`` for a 1,000,000-recipient CSV (``dst_number,name``,
    distinct valid Chilean mobiles, generated once into the work directory), no
    balance lookup. Targets: ≤ 30 s, ≤ 300 B of Redis per pending recipient.
``campaign_accept_naive`` (baseline)
    What a user writes instead (:mod:`bench.campaign_baseline`): ``csv.DictReader``
    and one ``send_with_options(..., delay=<until tomorrow>)`` per recipient on a
    plain Dramatiq ``RedisBroker`` actor (never consumed). At about 5,000
    messages/s a million would take minutes, so it runs on the first 200,000
    rows and ``messages`` says so. Target: the project >= 5x its rate.
``campaign_sandbox_bulk`` (sandbox)
    The ceiling: the sandbox alone under concurrent ``POST /api_v1/send_sms_bulk``
    of 1,000 messages each (asyncio + httpx, the worker's form encoding), for
    10 s. ``msgs_per_s`` counts recipients (requests/s x 1,000).
``campaign_v1_bulk`` / ``campaign_v1_bulk_2proc`` (project)
    End to end: a 100,000-recipient campaign due now, through a
    :class:`cli.stack.LocalStack` (real sandbox, latency 0; ``connectus
    worker`` with 1, then 2 processes, 8 threads), from ``send`` to state
    ``finished``. Rate limits lifted, ``CAMPAIGN_MAX_PENDING=50000``; the
    sandbox's status steps are slowed to an hour so that its scheduler does not
    compete for the CPU. Afterwards the sandbox ledger
    (``/_sandbox/ledger/summary``) must show N charges and no recipient charged
    twice. Target: ≥ 20,000 recipients/s.

Method. The two accept scenarios each run in a child process
(``--child``), so that CPU (``time.process_time`` around the call), peak RSS
(the child's ``VmHWM``) and Redis figures belong to that call alone.
``redis_cmds_per_msg`` is the ``INFO commandstats`` delta over the call
divided by the recipients (commands inside Lua scripts count, as in
``bench/results.json``); ``redis_bytes_per_recipient`` the ``used_memory``
delta divided by them (accept: what a pending recipient costs; bulk: what
stays per sent recipient, job records included). On a Redis shared with other
clients both are polluted by them: the accept rows also give the exact
``MEMORY USAGE`` of their own keys in the details. The bulk rows' CPU is the
worker supervisor and its children; the sandbox's and Redis's are in the
details, as cores used, to show what saturates. Every key written is under a
fresh ``KEY_PREFIX`` / namespace and deleted afterwards (never FLUSHALL).
By default the CLI starts a private ``redis-server``; ``--redis-url`` uses
another one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import redis

from bench import procstats
from bench.harness import kill_now

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "campaign_results.json"
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
SANDBOX_FLAGS = {"step_delay_s": 3600}
TARGETS = {
    "accept_s": 30.0,
    "accept_bytes": 300.0,
    "accept_vs_naive": 5.0,
    "bulk_per_s": 20_000.0,
}
# Commands the benchmark itself sends while measuring.
_OWN_COMMANDS = {"info", "memory|usage", "client|setinfo", "hello", "ping", "scan"}


@dataclass(frozen=True)
class Sizes:
    accept: int  # recipients accepted by the project
    naive: int  # rows the naive baseline enqueues (a prefix of the same file)
    bulk: int  # recipients of each end-to-end campaign
    sandbox_s: float  # duration of the sandbox-alone load
    bulk_processes: tuple[int, ...]  # worker processes of the end-to-end runs


FULL = Sizes(accept=1_000_000, naive=200_000, bulk=100_000, sandbox_s=10.0, bulk_processes=(1, 2))
QUICK = Sizes(accept=50_000, naive=5_000, bulk=5_000, sandbox_s=1.0, bulk_processes=(1,))
SCENARIOS = ("accept", "naive", "sandbox", "bulk")


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


# -- child processes (accept scenarios) ---------------------------------------------------


def _vm_hwm_mb() -> float:
    return procstats.status_kb(os.getpid(), "VmHWM") / 1024


def _child_accept(
    redis_url: str, prefix: str, path: Path, *, profile: bool = False
) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    from config import load_settings
    from core.keys import Keys
    from producers.campaign_plan import CampaignOptions
    from producers.campaigns import CampaignProducer

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


def _child_naive(redis_url: str, namespace: str, path: Path, limit: int) -> dict[str, Any]:
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


def _bulk_body(size: int = 1000) -> bytes:
    """A ``send_sms_bulk`` form as the worker sends it (``messages`` is a JSON string)."""
    items = [
        {"dst_number": f"5697{i:07d}", "sms_content": f"Hola Cliente {i}"} for i in range(size)
    ]
    form = {
        "messages": json.dumps(items, ensure_ascii=False),
        "delivery_name": "bench bulk",
    }
    return urlencode(form).encode()


@dataclass
class _Load:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]


async def _bulk_load(base_url: str, *, seconds: float, connections: int) -> _Load:
    from cli.stack import SANDBOX_KEY, SANDBOX_USER

    body = _bulk_body()
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(
        base_url=base_url,
        limits=limits,
        timeout=60.0,
        auth=(SANDBOX_USER, SANDBOX_KEY),
        headers=headers,
    ) as client:
        await client.post("/api_v1/send_sms_bulk", content=body)  # warm: connect
        stop_at = time.perf_counter() + seconds

        async def one() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                response = await client.post("/api_v1/send_sms_bulk", content=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += response.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
        elapsed = time.perf_counter() - t0
    return _Load(len(latencies), errors, elapsed, latencies)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def sandbox_bulk(
    *, redis_url: str, workdir: Path, seconds: float, connections: int = 4
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``campaign_sandbox_bulk``: the sandbox alone under bulk calls of 1,000."""
    from cli.stack import LocalStack

    log_dir = workdir / "logs" / f"sandbox-{uuid.uuid4().hex[:6]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with LocalStack(
        redis_url=redis_url, start_workers=False, sandbox_flags=SANDBOX_FLAGS, log_dir=log_dir
    ) as stack:
        assert stack.sandbox is not None
        pid = stack.sandbox.pid
        cpu0 = procstats.cpu_seconds(pid)
        load = asyncio.run(_bulk_load(stack.sandbox_url, seconds=seconds, connections=connections))
        cpu = procstats.cpu_seconds(pid) - cpu0
        rss = procstats.status_kb(pid, "VmHWM") / 1024
    messages = load.requests * 1000
    row = make_row(
        "campaign_sandbox_bulk",
        "sandbox",
        latency_ms=0,
        messages=messages,
        seconds=load.seconds,
        p50_ms=percentile(load.latencies_ms, 50),
        p99_ms=percentile(load.latencies_ms, 99),
        cpu_s=cpu,
        peak_rss_mb=rss,
        note=(
            f"{load.requests / load.seconds:.1f} send_sms_bulk requests/s of 1,000 messages "
            f"({connections} connections, python httpx asyncio); p50/p99 per request"
        ),
    )
    details = {
        "requests": load.requests,
        "errors": load.errors,
        "connections": connections,
        "sandbox_cores": round(cpu / load.seconds, 2),
    }
    return row, details


def _wait_for_lines(
    path: Path, text: str, count: int, proc: subprocess.Popen[bytes], timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"workers exited ({proc.returncode}); see {path}")
        with contextlib.suppress(OSError):
            if path.read_text(errors="replace").count(text) >= count:
                return
        time.sleep(0.05)
    raise TimeoutError(f"no {count}x {text!r} in {path} within {timeout_s} s")


def v1_bulk(
    *,
    redis_url: str,
    workdir: Path,
    n: int,
    processes: int,
    threads: int = 8,
    timeout_s: float = 900,
    profile_s: float = 0,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``campaign_v1_bulk`` (1 process) or ``campaign_v1_bulk_<P>proc``: row and details."""
    from cli.stack import LocalStack
    from core.campaign.model import CampaignState
    from producers.campaign_plan import CampaignOptions
    from producers.campaigns import CampaignProducer

    path = recipients_csv(workdir, n)
    prefix = new_prefix("bulk")
    client = redis.Redis.from_url(redis_url)
    log_dir = workdir / "logs" / prefix
    log_dir.mkdir(parents=True, exist_ok=True)
    name = "campaign_v1_bulk" if processes == 1 else f"campaign_v1_bulk_{processes}proc"
    env = {"KEY_PREFIX": prefix, **BULK_ENV}
    try:
        with LocalStack(
            redis_url=redis_url,
            processes=processes,
            threads=threads,
            env=env,
            start_workers=False,
            sandbox_flags=SANDBOX_FLAGS,
            log_dir=log_dir,
        ) as stack, httpx.Client(base_url=stack.sandbox_url, timeout=60.0) as http:  # fmt: skip
            stack.start_worker_supervisor()
            assert stack.workers is not None and stack.sandbox is not None
            workers = stack.workers
            _wait_for_lines(stack.log_path("workers"), "worker.started", processes, workers)
            producer = CampaignProducer(stack.settings)
            store = producer.store
            root, sandbox_pid = workers.pid, stack.sandbox.pid
            sampler = procstats.RssSampler(lambda: procstats.children(root)).start()
            before = redis_snapshot(client)
            worker_cpu0 = procstats.tree_cpu_seconds(root)
            sandbox_cpu0 = procstats.cpu_seconds(sandbox_pid)
            own_cpu0 = time.process_time()
            t0 = time.time()
            accepted = producer.send(path, CampaignOptions(name=f"bench {name}", text=TEMPLATE))
            t_accepted = time.time()
            accept_cpu = time.process_time() - own_cpu0
            cid = accepted.campaign_id
            profiler: threading.Thread | None = None
            raw = log_dir / "bulk-profile.txt"
            if profile_s > 0:
                profiler = _start_profile(root, profile_s, raw)
            state = None
            deadline = time.monotonic() + timeout_s
            while True:
                campaign = store.get(cid)
                state = campaign.state if campaign is not None else None
                if state in (CampaignState.FINISHED, CampaignState.CANCELLED, None):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name}: {cid} still {state} after {timeout_s} s")
                time.sleep(0.05)
            t_done = time.time()
            worker_cpu = procstats.tree_cpu_seconds(root) - worker_cpu0
            sandbox_cpu = procstats.cpu_seconds(sandbox_pid) - sandbox_cpu0
            after = redis_snapshot(client)
            sampler.stop()
            counts = store.counts(cid)
            summary = http.get("/_sandbox/ledger/summary").json()
            first = http.get("/_sandbox/ledger", params={"since": 0, "limit": 1}).json()
            total = int(first["total"])
            last = http.get("/_sandbox/ledger", params={"since": total - 1, "limit": 1}).json()
            producer.redis.close()
            if profiler is not None:
                profiler.join()
            # Everything is measured: stop the workers at once, as the send-path runs
            # do (Dramatiq's graceful stop polls for seconds and measures nothing);
            # the stack's exit then only reaps them. The supervisor first: it would
            # respawn a child it sees die.
            kill_now([root, *procstats.children(root)])
    finally:
        delete_prefix(client, prefix)
        client.close()
    if state is not CampaignState.FINISHED:
        raise RuntimeError(f"{name}: campaign ended {state}, not finished")
    seconds = t_done - t0
    redis_d = redis_delta(before, after)
    duplicates = int(summary["duplicate_sends"]["groups"])
    charged = int(summary["by_product"].get("sms", {}).get("charges", 0))
    first_at = float(first["charges"][0]["at"]) if first["charges"] else t0
    last_at = float(last["charges"][0]["at"]) if last["charges"] else t_done
    ok = duplicates == 0 and charged == n and counts.get("sent") == n
    note = (
        f"ledger: {charged:,} charges for {n:,} recipients, {duplicates} charged twice"
        f"{'' if ok else ' -- CHECK FAILED'}; accept {t_accepted - t0:.1f} s, "
        f"first to last charge {last_at - first_at:.1f} s"
    )
    row = make_row(
        name,
        "project",
        latency_ms=0,
        processes=processes,
        messages=n,
        seconds=seconds,
        cpu_s=worker_cpu,
        peak_rss_mb=sampler.peak_mb(),
        redis_cmds=redis_d["calls"],
        redis_bytes=redis_d["bytes"],
        note=note,
    )
    details: dict[str, Any] = {
        "ledger_ok": ok,
        "charges": charged,
        "duplicate_sends": duplicates,
        "counts": counts,
        "threads": threads,
        "accept_s": round(t_accepted - t0, 3),
        "accepted_to_finished_s": round(t_done - t_accepted, 3),
        "send_to_last_charge_per_s": round(n / max(last_at - t0, 1e-9), 1),
        "first_to_last_charge_per_s": round(n / max(last_at - first_at, 1e-9), 1),
        # cores used over the whole run (accept included): what saturates
        "cores": {
            "workers": round(worker_cpu / seconds, 2),
            "sandbox": round(sandbox_cpu / seconds, 2),
            "redis": round(redis_d["cpu_s"] / seconds, 2),
            "producer (accept, this process)": round(accept_cpu / seconds, 2),
        },
        "cpu_s_per_1k": {
            "workers": round(worker_cpu / n * 1000, 3),
            "sandbox": round(sandbox_cpu / n * 1000, 3),
            "redis": round(redis_d["cpu_s"] / n * 1000, 3),
            "producer (accept)": round(accept_cpu / n * 1000, 3),
        },
        "commands_per_recipient": {k: round(v / n, 3) for k, v in redis_d["cmds"].items()},
        "rss_mb_by_pid": {str(p): round(kb / 1024, 1) for p, kb in sampler.hwm_kb.items()},
        "logs": str(log_dir),
        "prefix": prefix,
    }
    if profile_s > 0 and raw.is_file():
        from bench import profile as pyspy

        details["profile"] = pyspy.summarise(raw)
    log(f"  {name}: {n / seconds:,.0f}/s, ledger ok={ok}")
    return row, details


def _start_profile(root: int, seconds: float, raw: Path) -> threading.Thread:
    """py-spy (``--gil``) of the first worker child, in a thread, while the campaign runs."""
    from bench import profile as pyspy

    def run() -> None:
        kids = procstats.children(root)
        if kids:
            pyspy.record(kids[0], seconds=seconds, out_raw=raw)

    thread = threading.Thread(target=run, name="bulk-profile", daemon=True)
    thread.start()
    return thread


# -- the whole set ------------------------------------------------------------------------


def run_campaign_scenarios(
    *,
    quick: bool,
    redis_url: str,
    workdir: Path,
    only: set[str] | None = None,
    details: dict[str, Any] | None = None,
    sizes: Sizes | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run the campaign scenarios against ``redis_url``; rows as in ``bench/results.json``.

    ``workdir`` keeps the generated CSV files between runs (and the stack logs).
    ``only`` restricts to some of :data:`SCENARIOS`; ``details``, if given, is
    filled with per-scenario extras keyed ``"<name>/<system>"``; ``sizes``
    overrides :data:`FULL` / :data:`QUICK` (the smoke test runs tiny ones).
    """
    sizes = sizes or (QUICK if quick else FULL)

    def wanted(scenario: str) -> bool:
        return not only or scenario in only

    workdir.mkdir(parents=True, exist_ok=True)
    extras: dict[str, Any] = details if details is not None else {}
    rows: list[dict[str, Any]] = []

    def add(result: tuple[dict[str, Any], dict[str, Any]]) -> None:
        row, more = result
        # The machine may be shared: the load average says how much.
        more["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        extras[f"{row['name']}/{row['system']}"] = more
        log(one_line(row))

    if wanted("accept") or wanted("naive"):
        recipients_csv(workdir, sizes.accept)
    if wanted("accept"):
        add(accept_project(redis_url=redis_url, workdir=workdir, n=sizes.accept))
    if wanted("naive"):
        add(accept_naive(redis_url=redis_url, workdir=workdir, n=sizes.accept, limit=sizes.naive))
    _compare_accept(rows)
    if wanted("sandbox"):
        add(sandbox_bulk(redis_url=redis_url, workdir=workdir, seconds=sizes.sandbox_s))
    if wanted("bulk"):
        for processes in sizes.bulk_processes:
            add(
                v1_bulk(
                    redis_url=redis_url, workdir=workdir, n=sizes.bulk, processes=processes,
                    log=log,
                )
            )  # fmt: skip
    return rows


def _compare_accept(rows: list[dict[str, Any]]) -> None:
    """Note the project's accept rate as a multiple of the naive baseline's (same run)."""
    by_name = {r["name"]: r for r in rows}
    project, naive = by_name.get("campaign_accept_csv"), by_name.get("campaign_accept_naive")
    if project is None or naive is None or not naive["msgs_per_s"]:
        return
    ratio = project["msgs_per_s"] / naive["msgs_per_s"]
    project["note"] = f"{ratio:.1f}x the naive baseline's rate (same run)"


# -- report -------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


COLUMNS = (
    ("scenario", "name"), ("system", "system"), ("proc", "processes"), ("msgs", "messages"),
    ("s", "seconds"), ("msg/s", "msgs_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
    ("CPU s/1k", "cpu_s_per_1k"), ("RSS MB", "peak_rss_mb"), ("cmds/msg", "redis_cmds_per_msg"),
    ("B/msg", "redis_bytes_per_recipient"),
)  # fmt: skip


def one_line(row: dict[str, Any]) -> str:
    return "  " + ", ".join(f"{title} {_fmt(row.get(key))}" for title, key in COLUMNS)


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for title, _ in COLUMNS]]
    cells += [[_fmt(r.get(key)) for _, key in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {r['name']}/{r['system']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def target_lines(rows: list[dict[str, Any]]) -> list[str]:
    """PASS/FAIL against the issue's targets, for the rows present."""
    by_name = {r["name"]: r for r in rows}
    out = []
    accept = by_name.get("campaign_accept_csv")
    if accept is not None:
        s, b = accept["seconds"], accept["redis_bytes_per_recipient"]
        scale = 1_000_000 / accept["messages"]
        cpu = (accept["cpu_s_per_1k"] or 0) * 1000
        out.append(
            f"accept 1M in <= {TARGETS['accept_s']:.0f} s: "
            f"{_pass(s * scale <= TARGETS['accept_s'])} ({s * scale:.1f} s per million; "
            f"{cpu:.1f} s of CPU per million, so {cpu:.0f} s on a core of its own)"
        )
        out.append(
            f"Redis per pending recipient <= {TARGETS['accept_bytes']:.0f} B: "
            f"{_pass(b is not None and b <= TARGETS['accept_bytes'])} ({b} B)"
        )
        naive = by_name.get("campaign_accept_naive")
        if naive is not None and naive["msgs_per_s"]:
            ratio = accept["msgs_per_s"] / naive["msgs_per_s"]
            out.append(
                f"accept >= {TARGETS['accept_vs_naive']:.0f}x the naive baseline: "
                f"{_pass(ratio >= TARGETS['accept_vs_naive'])} ({ratio:.1f}x)"
            )
    for row in rows:
        if row["name"].startswith("campaign_v1_bulk"):
            rate = row["msgs_per_s"] or 0
            out.append(
                f"{row['name']} >= {TARGETS['bulk_per_s']:,.0f} recipients/s: "
                f"{_pass(rate >= TARGETS['bulk_per_s'])} ({rate:,.0f}/s)"
            )
    return out


def _pass(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _code_state() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "worker", "core", "producers", "sandbox",
             "config", "cli"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return f"commit {head}" + (f", uncommitted changes in {', '.join(changed)}" if changed else "")


def _machine() -> str:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"nproc={os.cpu_count()}, {model}, Python {platform.python_version()}, {when}"


# -- command line -------------------------------------------------------------------------


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    """``url`` as given, or a private ``redis-server`` for the run."""
    if url:
        yield url
        return
    from core.embedded_redis import RedisServer

    exe = shutil.which("redis-server")
    server = RedisServer(executable=exe) if exe else RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


def _child_main(args: argparse.Namespace) -> int:
    path = Path(args.csv)
    if args.child == "accept":
        data = _child_accept(args.redis_url, args.prefix, path, profile=args.profile)
    elif args.child == "naive":
        data = _child_naive(args.redis_url, args.prefix, path, args.limit)
    else:
        raise SystemExit(f"unknown child {args.child!r}")
    Path(args.child_out).write_text(json.dumps(data))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.campaign_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1/20 of every size")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {SCENARIOS}")
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "cw-campaign-bench",
        help="where the generated CSV files are kept between runs",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one accept (top 15 cumulative)"
    )
    parser.add_argument(
        "--profile-bulk", type=float, default=0, metavar="S",
        help="py-spy the first worker for S seconds during a 1-process bulk run",
    )  # fmt: skip
    # internal: one accept scenario in a child process
    parser.add_argument("--child", choices=("accept", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args)

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - set(SCENARIOS):
        parser.error(f"--only: unknown scenario(s) {sorted(only - set(SCENARIOS))}")
    sizes = QUICK if args.quick else FULL
    command = "python -m bench.campaign_bench" + (
        " " + " ".join(sys.argv[1:]) if argv is None else ""
    )
    started = time.monotonic()
    code_at_start = _code_state()
    details: dict[str, Any] = {}
    with _redis(args.redis_url) as url:
        print(f"redis {url}, workdir {args.workdir}", flush=True)
        rows = run_campaign_scenarios(
            quick=args.quick, redis_url=url, workdir=args.workdir, only=only or None,
            details=details, log=lambda s: print(s, flush=True),
        )  # fmt: skip
        if args.profile:
            n = sizes.accept if args.quick else sizes.accept // 5
            _, more = accept_project(redis_url=url, workdir=args.workdir, n=n, profile=True)
            details["profile_accept"] = {"recipients": n, "top15_cumulative": more["profile"]}
            print(f"\ncProfile of one accept ({n:,} recipients), top 15 cumulative:")
            print(more["profile"])
        if args.profile_bulk > 0:
            _, more = v1_bulk(
                redis_url=url, workdir=args.workdir, n=sizes.bulk, processes=1,
                profile_s=args.profile_bulk, log=lambda s: print(s, flush=True),
            )  # fmt: skip
            details["profile_bulk"] = more.get("profile", {"error": "py-spy recorded nothing"})
            print(json.dumps(details["profile_bulk"], indent=1))
    elapsed = time.monotonic() - started
    data = {
        "machine": _machine(),
        "command": command,
        "code": code_at_start,
        "code_at_end": _code_state(),
        "elapsed_s": round(elapsed, 1),
        "scenarios": rows,
        "details": details,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print()
    print(table(rows))
    print()
    for line in target_lines(rows):
        print(line)
    load = os.getloadavg()
    print(
        f"\n{len(rows)} scenarios in {elapsed:.0f} s (load average now {load[0]:.1f} on "
        f"{os.cpu_count()} CPUs); wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
