"""The framework's ceiling: this project's broker and worker set-up, an actor that only sleeps.

What one worker process can drain when a message costs nothing but its
Dramatiq hand-offs (fetch, decode, work queue, thread, acknowledgement) and
a wait of ``BENCH_CEILING_LATENCY_MS`` (ms) in place of the HTTP call:
:func:`transport.broker.build_broker`'s broker (batched acknowledgements and
fetches), the worker's prefetch (:func:`worker.process.prefetch_for`), no
ledger, no limiter, no HTTP. The send path can approach this figure, never
pass it; the gap is what the send path itself costs.

:func:`run_ceiling` measures it (scenario ``ceiling_50ms_t96``); the
worker process alone::

    python -m bench.ceiling     # BENCH_CEILING_THREADS (default 96)

The clock starts when the first message runs (the worker writes that time
to Redis) and stops when the last acknowledgement reaches Redis (the
queue's hash of payloads is empty), up to the broker's ``ack_delay_s`` (50 ms) after it
ran: the figure errs low, by under 1% for a 10 s drain, never high.

Environment: ``REDIS_URL``, ``KEY_PREFIX`` (the project's settings),
``BENCH_CEILING_THREADS``, ``BENCH_CEILING_LATENCY_MS`` (default 50).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import dramatiq
import redis

from bench import procstats
from bench.harness import Bench, kill_now, start_module
from bench.rows import Result
from connectus_worker.config import load_settings
from connectus_worker.transport.broker import ConnectusBroker, build_broker
from connectus_worker.worker.process import prefetch_for

QUEUE = "bench-ceiling"
ACTOR = "nap"
#: Where the first message to run writes its start (epoch s): the drain's clock.
STARTED_KEY = "bench-ceiling:started"


def declare(broker: ConnectusBroker, latency_s: float) -> dramatiq.Actor[[int], None]:
    """The sleeping actor on ``broker`` (the producer declares the same one to send).

    The first message a process runs writes its start time (one Redis call
    per process): the worker consumes as soon as it starts, before the
    benchmark can see that it did, so the clock cannot start in the benchmark.
    """
    broker.declare_queue(QUEUE)
    first = threading.Lock()

    def nap(i: int) -> None:
        if first.acquire(blocking=False):  # only the first message gets it
            broker.client.set(STARTED_KEY, repr(time.time()), nx=True)
        time.sleep(latency_s)

    return dramatiq.actor(queue_name=QUEUE, actor_name=ACTOR, broker=broker)(nap)


def main() -> int:
    """One worker process until SIGTERM/SIGINT."""
    settings = load_settings()
    threads = int(os.environ.get("BENCH_CEILING_THREADS", "96"))
    latency_s = float(os.environ.get("BENCH_CEILING_LATENCY_MS", "50")) / 1000
    broker = build_broker(settings, client=redis.Redis.from_url(settings.redis_url))
    declare(broker, latency_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=threads)
    worker.queue_prefetch = prefetch_for(threads)
    worker.start()
    print(f"ceiling worker ready pid={os.getpid()} threads={threads}", flush=True)
    stop.wait()
    worker.stop()
    return 0


def run_ceiling(bench: Bench, *, threads: int, latency_ms: float, messages: int) -> Result:
    """Prefill ``messages``, start one ceiling worker, time the drain (row ``system=baseline``)."""
    stack = bench.stack
    assert stack is not None and bench.redis is not None
    bench.reset(latency_ms=latency_ms)
    broker = build_broker(stack.settings, client=bench.redis)
    actor = declare(broker, latency_ms / 1000)
    for i in range(messages):
        actor.send(i)
    pending = f"{broker.namespace}:{QUEUE}.msgs"
    assert bench.redis.hlen(pending) == messages
    env = {**os.environ, **stack.env, "BENCH_CEILING_THREADS": str(threads),
           "BENCH_CEILING_LATENCY_MS": str(latency_ms)}  # fmt: skip
    proc = start_module("bench.ceiling", env=env, log_path=bench.log_dir / "ceiling.log",
                        ready="ceiling worker ready")  # fmt: skip
    try:
        sampler = procstats.RssSampler(lambda: [proc.pid], interval_s=0.5).start()
        user0, kernel0 = procstats.cpu_split(proc.pid)
        switches0 = procstats.switches(proc.pid)
        deadline = time.monotonic() + 600
        while bench.redis.hlen(pending):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise TimeoutError(f"ceiling: {bench.redis.hlen(pending)} of {messages} left")
            time.sleep(0.01)
        started = bench.redis.get(STARTED_KEY)
        if started is None:  # else the rate would be computed from the epoch
            raise RuntimeError(f"ceiling: the worker never wrote {STARTED_KEY}")
        elapsed = time.time() - float(started)
        user, kernel = procstats.cpu_split(proc.pid)
        switches = procstats.switches(proc.pid) - switches0
        sampler.stop()
    finally:
        kill_now([proc.pid])
    cpu = (user - user0) + (kernel - kernel0)
    return Result(
        name=f"ceiling_{latency_ms:g}ms_t{threads}",
        system="baseline",
        latency_ms=latency_ms,
        processes=1,
        messages=messages,
        msgs_per_s=messages / elapsed,
        cpu_s_per_1k=cpu / messages * 1000,
        peak_rss_mb=sampler.peak_mb(),
        details={
            "threads": threads,
            "prefill": True,
            "actor": f"time.sleep({latency_ms / 1000:g}); no HTTP, no ledger",
            "drain_s": round(elapsed, 3),
            "worker_kernel_share": round((kernel - kernel0) / cpu, 3) if cpu else None,
            "worker_switches_per_msg": round(switches / messages, 1),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
