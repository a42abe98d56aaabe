"""The baseline: what a competent user would write instead of this project.

A plain Dramatiq actor that posts each SMS with one module-level pooled
``httpx.Client`` to Connectus v3 ``POST /api_v3/sms/send_individual`` with
Basic auth. Default broker middleware, default worker settings (8 threads),
no ledger, no rate limiter, no job records. Producers call
``send_sms.send(dst_number, sms_content)``.

Configuration comes from the environment, read when the module is imported:

- ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379``)
- ``BENCH_NAMESPACE`` (Dramatiq key namespace, default ``bench-baseline``)
- ``CONNECTUS_BASE_URL``, ``CONNECTUS_API_USER``, ``CONNECTUS_API_KEY``

Run it as a worker either with Dramatiq's own CLI::

    python -m dramatiq bench.baseline --processes 1 --threads 8

or with the small runner below (one process, no fork, which is what the
benchmark uses so that CPU and RSS belong to one pid)::

    python -m bench.baseline            # BENCH_BASELINE_THREADS, default 8
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import dramatiq
import httpx
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(
    url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
    namespace=os.environ.get("BENCH_NAMESPACE", "bench-baseline"),
)
dramatiq.set_broker(broker)

client = httpx.Client(
    base_url=os.environ.get("CONNECTUS_BASE_URL", "http://127.0.0.1:8081"),
    auth=(
        os.environ.get("CONNECTUS_API_USER", "sandbox"),
        os.environ.get("CONNECTUS_API_KEY", "sandbox-key"),
    ),
    timeout=10.0,
)


@dramatiq.actor
def send_sms(dst_number: str, sms_content: str) -> None:
    response = client.post(
        "/api_v3/sms/send_individual",
        json={"dst_number": dst_number, "sms_content": sms_content},
    )
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "ESME_ROK":
        raise RuntimeError(f"Connectus refused the SMS: {body.get('status')}")


def main() -> int:
    """One worker process with ``BENCH_BASELINE_THREADS`` threads until SIGTERM/SIGINT."""
    threads = int(os.environ.get("BENCH_BASELINE_THREADS", "8"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    print(f"baseline worker ready pid={os.getpid()} threads={threads}", flush=True)
    stop.wait()
    worker.stop()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
