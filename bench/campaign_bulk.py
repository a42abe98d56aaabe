"""The v1 bulk scenarios: ``campaign_sandbox_bulk`` (the sandbox alone) and
``campaign_v1_bulk`` (a campaign end to end through real workers)
(:mod:`bench.campaign_bench` describes the method).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import redis

from bench import procstats
from bench.campaign_common import (
    BULK_ENV,
    SANDBOX_FLAGS,
    TEMPLATE,
    delete_prefix,
    make_row,
    new_prefix,
    recipients_csv,
    redis_delta,
    redis_snapshot,
)
from bench.harness import kill_now, wait_for_lines
from bench.rows import percentile


def _bulk_body(size: int = 1000) -> bytes:
    """A 1,000-message ``send_sms_bulk`` as a form body (``messages`` a JSON string): the
    sandbox's ceiling for one call. The worker sends the same parameters in the query
    string, in calls that fit a URL; the sandbox takes a body with ``v1_params=any``."""
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
    from devtools.stack import SANDBOX_KEY, SANDBOX_USER

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


def sandbox_bulk(
    *, redis_url: str, workdir: Path, seconds: float, connections: int = 4
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``campaign_sandbox_bulk``: the sandbox alone under bulk calls of 1,000."""
    from devtools.stack import LocalStack

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
    from connectus_worker.campaign.model import CampaignState
    from connectus_worker.campaign.options import CampaignOptions
    from connectus_worker.producers.campaigns import CampaignProducer
    from devtools.stack import LocalStack

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
            wait_for_lines(stack.log_path("workers"), 0, "worker.started", processes, workers)
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
