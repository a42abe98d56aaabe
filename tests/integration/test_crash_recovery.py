"""SIGKILL a worker process holding prefetched and in-flight messages.

Dramatiq returns the messages a dead process fetched only in its broker
maintenance step, which by default runs on 0.1% of broker calls: about ten
minutes of stranded messages in a test. Here every process runs it every
``BROKER_MAINTENANCE_INTERVAL_S``, so recovery is bounded by the heartbeat
timeout plus that interval; and the ledger decides what happens to each
redelivered message (in-flight ones are reconciled, never resent blindly).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable

from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.stack_checks import NUMBER, child_pids, ledger
from tests.support.waiting import wait_for

RECOVERY = {
    "BROKER_HEARTBEAT_TIMEOUT_S": "4",
    "BROKER_MAINTENANCE_INTERVAL_S": "1",
    "CONNECTUS_CONNECT_TIMEOUT_S": "1",
    "CONNECTUS_READ_TIMEOUT_S": "5",
    "CONNECTUS_WRITE_TIMEOUT_S": "1",
    "RETRY_ATTEMPTS": "1",
    "RECONCILE_AFTER_S": "0.5",
    "RECONCILE_WINDOW_S": "2",
    "RECONCILE_INTERVAL_S": "0.5",
    # The killed sends' lease: 1 x (1 + 1 + 5 + 0.1) + 2 = 9.1 s (worker.app.lease_ms),
    # still well above a live send here (2 s of sandbox latency).
    "LEASE_MARGIN_S": "2",
}
RECOVERY_BOUND_S = 4 + 1 + 10  # heartbeat timeout + maintenance interval + respawn and slack


def test_messages_of_a_killed_process_are_recovered_within_the_bound(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(sandbox_flags={"latency_ms": 2000}, threads=2, env=RECOVERY)
    producer = Producer(stack.settings)
    job_ids = [producer.send_sms(NUMBER, f"recuperar {i}") for i in range(10)]

    def states() -> Counter[State]:
        return Counter(producer.get_status(j).state for j in job_ids)

    wait_for(lambda: states()[State.SENDING] == 2, timeout_s=30, what="2 sends in flight")
    assert stack.workers is not None
    (victim,) = child_pids(stack.workers.pid)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    # The 8 messages it had prefetched but not started come back and are sent.
    waiting = [j for j in job_ids if producer.get_status(j).state is State.QUEUED]
    assert len(waiting) == 8
    wait_for(
        lambda: all(producer.get_status(j).state is State.SENT for j in waiting),
        timeout_s=RECOVERY_BOUND_S + 8 * 2,  # plus the sends themselves, 2 at a time
        what="prefetched messages recovered and sent",
    )
    assert time.monotonic() - killed_at < RECOVERY_BOUND_S + 8 * 2

    # The 2 in flight settle through lease expiry and reconciliation: each is
    # charged once in the end, whether the sandbox had taken it or not.
    wait_for(lambda: states() == {State.SENT: 10}, timeout_s=90, what="every job sent")
    per_content = Counter(c["content_sha256"] for c in ledger(stack))
    assert sorted(per_content.values()) == [1] * 10
