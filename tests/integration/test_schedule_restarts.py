"""Scheduled deliveries live in Redis, not in a worker's memory: they survive restarts.

Dramatiq's delay-queue consumer holds delayed messages in memory and drops
them on a connection error (dramatiq issue 527); here nothing is held in a
worker: a scheduled job waits in a Redis sorted set until it is due.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from core.models import State
from devtools.stack import LocalStack
from producers.api import Producer
from tests.support.stack_checks import NUMBER, child_pids, ledger
from tests.support.waiting import wait_for


def test_a_scheduled_job_fires_once_after_every_worker_was_killed(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(processes=2)
    producer = Producer(stack.settings)
    due = datetime.now(UTC) + timedelta(seconds=6)
    job_ids = [producer.send_sms(NUMBER, f"programado {i}", deliver_at=due) for i in range(5)]
    assert stack.workers is not None
    supervisor = stack.workers.pid
    children = wait_for(
        lambda: c if len(c := child_pids(supervisor)) == 2 else None, timeout_s=30, what="2 workers"
    )
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
