"""One worker process (``python -m connectus_worker.worker.process --threads T --queues
otp,transactional,bulk``, started by the supervisor): Dramatiq consumers plus
housekeeping. SIGTERM and SIGINT drain: in-flight sends get up to
``WORKER_SHUTDOWN_GRACE_S`` to finish, and prefetched messages go back to their queue.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import dramatiq
import structlog

import connectus_worker.tracing as tracing
from connectus_worker.config import ConfigError, Settings, load_settings
from connectus_worker.logging import configure_logging
from connectus_worker.worker.app import build_worker_app

log = structlog.get_logger("connectus_worker.worker.process")


def run(settings: Settings, *, queues: Sequence[str], threads: int) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    app = build_worker_app(settings)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    worker = dramatiq.Worker(app.broker, queues=set(queues), worker_threads=threads)
    # Dramatiq prefetches 2 x threads per queue. Every prefetched message
    # beyond the busy threads waits in the one in-process work queue, where
    # an OTP fetched later waits behind them: keep a quarter of the threads
    # as look-ahead instead (docs/benchmarks.md, "Threads and prefetch").
    worker.queue_prefetch = prefetch_for(threads)
    app.housekeeper.start()
    worker.start()
    log.info("worker.started", pid=os.getpid(), queues=list(queues), threads=threads)
    stop.wait()
    log.info("worker.draining", grace_s=settings.worker_shutdown_grace_s)
    worker.stop(timeout=int(settings.worker_shutdown_grace_s * 1000))
    app.close()
    log.info("worker.stopped")
    return 0


def prefetch_for(threads: int) -> int:
    """Messages fetched ahead per queue: the busy threads plus a quarter more."""
    return threads + max(2, threads // 4)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectus_worker.worker.process")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--queues", default=None, help="comma-separated queue names")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        settings.require_connectus_credentials()
        # OTEL_* (README, "Tracing"): spans of each send, when they ask for them.
        tracing.start("connectus-worker")
    except ConfigError as exc:
        print(f"connectus worker: configuration error: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG: the supervisor does not respawn on this code
    configure_logging(level=settings.log_level, json=settings.log_json)
    # One INFO line per HTTP request from httpx would double the log volume of
    # the hot path; our own send.* events already say what happened.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    queues = args.queues.split(",") if args.queues else list(settings.queues)
    unknown = set(queues) - set(settings.queues)
    if unknown:
        print(f"connectus worker: --queues: unknown queue(s) {sorted(unknown)}", file=sys.stderr)
        return 78
    return run(settings, queues=queues, threads=args.threads or settings.worker_threads)


if __name__ == "__main__":
    sys.exit(main())
