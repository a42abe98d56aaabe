"""``otp_under_bulk``: OTP latency while a bulk backlog drains, on a :class:`Bench`."""

from __future__ import annotations

import time

from bench import procstats
from bench.harness import (
    PROJECT_PREFIX,
    SMS_TEXT,
    Bench,
    cmd_delta,
    number,
    per_msg,
)
from bench.rows import Result, percentile


def run_otp_under_bulk(
    bench: Bench,
    *,
    bulk: int,
    otp_per_s: float,
    otp_seconds: float,
    threads: int,
    latency_ms: float = 50,
    warmup_s: float = 3.0,
    timeout_s: float = 120.0,
) -> Result:
    """OTP latency while a backlog of ``bulk`` bulk SMS drains (one worker process).

    ``bulk`` SMS are enqueued with ``priority="bulk"`` before the worker
    starts; ``warmup_s`` after it is ready (the bulk queue draining at full
    speed), OTPs are enqueued at ``otp_per_s`` for ``otp_seconds``, each to
    its own number. An OTP's latency is its job record's ``created_at``
    (enqueue) to ``sent_at`` (recorded right after the sandbox's 200, so an
    upper bound of "accepted by the sandbox"). The backlog is not drained
    to the end: the run stops once every OTP is sent. ``msgs_per_s`` is
    every charge (bulk and OTP) per second over the OTP window.
    """
    bench.reset(latency_ms=latency_ms)
    from connectus_worker.producers.api import Producer

    assert bench.stack is not None
    producer = Producer(bench.stack.settings)
    t0 = time.perf_counter()
    for i in range(bulk):
        producer.send_sms(number(i), SMS_TEXT.format(i=i), priority="bulk")
    prefill_s = time.perf_counter() - t0
    before = bench.redis_snapshot()
    otp_ids: list[str] = []
    with bench.project_workers(processes=1, threads=threads) as root:
        sampler = procstats.RssSampler(lambda: procstats.children(root), interval_s=0.5).start()
        time.sleep(warmup_s)
        charges0, w0 = bench.charges(), time.time()
        cpu0 = procstats.tree_cpu_seconds(root)
        count = max(1, int(otp_per_s * otp_seconds))
        start = time.monotonic()
        for k in range(count):
            due = start + k / otp_per_s
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            code = f"Tu codigo es {k % 1_000_000:06d}"
            otp_ids.append(producer.send_otp(f"5699{k % 10_000_000:07d}", code))
        deadline = time.monotonic() + timeout_s
        while True:
            sent = sent_at(bench, otp_ids)
            if sum(1 for _, s in sent if s is not None) == len(otp_ids):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"otp_under_bulk: OTPs not all sent within {timeout_s} s")
            time.sleep(0.1)
        charges1, w1 = bench.charges(), time.time()
        cpu = procstats.tree_cpu_seconds(root) - cpu0
        sampler.stop()
        after = bench.redis_snapshot()
    latencies = [float(s - c) for c, s in sent if c is not None and s is not None]
    handled = charges1 - charges0
    cmds = cmd_delta(before, after)
    return Result(
        name=f"otp_under_bulk_t{threads}",
        system="project",
        latency_ms=latency_ms,
        processes=1,
        messages=len(otp_ids),
        msgs_per_s=handled / max(w1 - w0, 1e-9),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        cpu_s_per_1k=cpu / max(1, handled) * 1000,
        peak_rss_mb=sampler.peak_mb(),
        details={
            "threads": threads,
            "bulk_backlog": bulk,
            "bulk_left_at_end": bulk + len(otp_ids) - charges1,
            "prefill_s": round(prefill_s, 1),
            "otp_per_s": otp_per_s,
            "otp_seconds": otp_seconds,
            "otp_max_ms": max(latencies) if latencies else None,
            "charges_during_window": handled,
            "commands": per_msg(cmds, max(1, charges1)),
        },
    )


def sent_at(bench: Bench, ids: list[str]) -> list[tuple[int | None, int | None]]:
    assert bench.redis is not None
    pipe = bench.redis.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(f"{PROJECT_PREFIX}:job:{job_id}", "created_at", "sent_at")
    return [
        (None if c is None else int(c), None if s is None else int(s)) for c, s in pipe.execute()
    ]
