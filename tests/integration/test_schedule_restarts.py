"""Scheduled deliveries live in Redis, not in a worker's memory: they survive restarts.

Dramatiq's delay-queue consumer holds delayed messages in memory and drops
them on a connection error (dramatiq issue 527); here nothing is held in a
worker: a scheduled job waits in a Redis sorted set until it is due.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.stack_checks import NUMBER, child_pids, ledger
from tests.support.waiting import wait_for


def test_a_scheduled_job_fires_once_after_every_worker_was_killed(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(processes=2)
    assert stack.workers is not None
    supervisor = stack.workers.pid
    # Both worker processes up and consuming (their own start-up line), however
    # slowly a loaded box starts them.
    children = wait_for(
        lambda: c if len(c := child_pids(supervisor)) == 2 and c <= _started(stack) else None,
        timeout_s=60,
        what="2 workers started",
    )
    producer = Producer(stack.settings)
    due = datetime.now(UTC) + timedelta(seconds=5)
    job_ids = [producer.send_sms(NUMBER, f"programado {i}", deliver_at=due) for i in range(5)]
    # Every process dies at once, supervisor included, well before the due time.
    for pid in (*children, supervisor):
        os.kill(pid, signal.SIGKILL)
    stack.workers.wait()
    stack.workers = None
    assert all(producer.get_status(j).state is State.SCHEDULED for j in job_ids)
    assert ledger(stack) == []
    stack.start_worker_supervisor()
    wait_for(
        lambda: all(producer.get_status(j).state is State.SENT for j in job_ids),
        timeout_s=60,
        what="all sent",
    )
    records = [producer.get_status(j) for j in job_ids]
    assert all(r.sent_at is not None and r.sent_at >= due.replace(microsecond=0) for r in records)
    assert len(ledger(stack)) == 5


def _started(stack: LocalStack) -> set[int]:
    """The pids of the worker processes that logged their start-up (JSON lines)."""
    pids = set()
    for line in stack.log_path("workers").read_text(errors="replace").splitlines():
        if '"worker.started"' in line:
            with contextlib.suppress(ValueError):  # a line still being written
                pids.add(int(json.loads(line)["pid"]))
    return pids
