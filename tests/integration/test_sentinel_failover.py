"""A Redis failover mid-drain, with real processes: nothing sent twice, nothing lost.

A primary, its replica and three sentinels (tests/support/sentinel.py); worker
processes and a producer that find the primary through Sentinel and confirm
claims and enqueues on one replica (``REDIS_MIN_REPLICAS=1``). While the
workers drain the first messages (with sandbox faults on), the replica falls
behind (its link is cut) and the primary is SIGKILLed; Sentinel promotes the
replica; the old primary rejoins as a replica. The workers follow without a
restart, the producer keeps enqueueing, and the sandbox's charge ledger shows
every message charged exactly once. Without the confirmation, the claims of the
sends made while the replica lagged die with the primary and those messages are
sent again: the same test with ``REDIS_MIN_REPLICAS=0`` charged 28 and 30 of
the 400 twice in two runs.
The long version (5,000 SMS, worker kills too) is ``make chaos``
(tests/chaos/test_chaos.py, ``test_chaos_failover``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import redis

from connectus_worker.domain.hashing import content_hash
from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.sentinel import SentinelCluster
from tests.support.stack_checks import FAST_RECONCILE, ledger, numbers, settle_final
from tests.support.waiting import wait_for

FAILOVER_ENV = {
    "BROKER_HEARTBEAT_TIMEOUT_S": "4",
    "BROKER_MAINTENANCE_INTERVAL_S": "1",
    "RETRY_ATTEMPTS": "2",
    "RETRY_INITIAL_BACKOFF_MS": "20",
    "RETRY_MAX_BACKOFF_MS": "200",
    "DURABLE_MIN_BACKOFF_MS": "200",
    "DURABLE_MAX_BACKOFF_MS": "1000",
    "CONNECTUS_CONNECT_TIMEOUT_S": "1",
    "CONNECTUS_READ_TIMEOUT_S": "2",
    "CONNECTUS_WRITE_TIMEOUT_S": "1",
    # A send cut by the failover is reconciled after its lease: 2 x (1 + 1 + 2 + 0.2) + 2 s.
    "LEASE_MARGIN_S": "2",
    "RATE_SMS_PER_S": "100000",
    "RATE_SMS_BURST": "100000",
    "BREAKER_OPEN_S": "1",
    "BREAKER_MAX_OPEN_S": "2",
    **FAST_RECONCILE,
}
BEFORE, AFTER = 300, 100  # messages queued before the failover, and after it
# 100 ms per send, 8 sends at a time: the 300 take ~4 s, time enough to cut the
# replica off and kill the primary mid-drain on a loaded machine.
FAULTS = {"latency_ms": 100, "jitter_ms": 20, "error_rate": 0.02, "drop_rate": 0.01, "seed": 23}


def _content(i: int) -> str:
    return f"failover {i:04d}"


def _send(producer: Producer, i: int) -> str | None:
    """Queue message ``i`` (its key makes a repeat harmless); None while Redis
    cannot confirm it (the failover, or no replica in sync yet)."""
    dst = numbers(1, start=i)[0]
    try:
        return producer.send_sms(dst, _content(i), idempotency_key=f"failover-{i}")
    except redis.ConnectionError:
        return None


@pytest.mark.timeout(180)
def test_a_failover_mid_drain_charges_every_message_exactly_once(tmp_path: Path) -> None:
    with (
        SentinelCluster(tmp_path / "redis") as cluster,
        LocalStack(
            redis_url=cluster.env["REDIS_URL"], env={**FAILOVER_ENV, **cluster.env},
            sandbox_flags=FAULTS, processes=2, threads=4, log_dir=tmp_path,
        ) as stack,
    ):  # fmt: skip
        producer = Producer(stack.settings)
        job_ids = [_send(producer, i) for i in range(BEFORE)]
        assert all(job_ids), "every enqueue confirmed before the failover"

        charged = wait_for(lambda: (n := len(ledger(stack))) >= BEFORE // 10 and n,
                           timeout_s=30, what="the drain under way")  # fmt: skip
        # The replica falls behind (its link cut), and the primary dies before it
        # catches up: what the replica will not have is what the primary had alone.
        cluster.cut_replication()
        log = stack.log_path("workers")
        wait_for(lambda: "not confirmed by 1 replicas" in log.read_text()
                 or len(ledger(stack)) >= charged + 30,
                 timeout_s=30, what="claims made while the replica is cut off")  # fmt: skip
        old = cluster.kill_primary()
        assert len(ledger(stack)) < BEFORE, "the primary is killed mid-drain"
        new = cluster.wait_for_promotion(old)
        assert new != old
        cluster.rejoin(old)  # back as a replica: claims can be confirmed again

        # The producer follows the promoted primary without a restart.
        job_ids += [
            wait_for(lambda i=i: _send(producer, i), timeout_s=20, what=f"message {i} queued")
            for i in range(BEFORE, BEFORE + AFTER)
        ]
        ids = [str(job_id) for job_id in job_ids]
        records = settle_final(producer, ids)
        assert Counter(r.state for r in records.values()) == {State.SENT: BEFORE + AFTER}

        per_content = Counter(c["content_sha256"] for c in ledger(stack))
        expected = {content_hash(_content(i)) for i in range(BEFORE + AFTER)}
        assert set(per_content) == expected, "a message lost, or one never submitted charged"
        twice = {digest: n for digest, n in per_content.items() if n != 1}
        assert twice == {}, "charged more than once"
        # The workers followed the failover in place: the supervisor never restarted.
        assert stack.workers is not None and stack.workers.poll() is None


@pytest.mark.timeout(90)
def test_no_send_while_no_replica_confirms_the_claim(tmp_path: Path) -> None:
    """The replica is down: workers claim but never send; back, each is sent once."""
    with (
        SentinelCluster(tmp_path / "redis") as cluster,
        LocalStack(
            redis_url=cluster.env["REDIS_URL"], env={**FAILOVER_ENV, **cluster.env},
            sandbox_flags={"seed": 23}, processes=1, threads=2, log_dir=tmp_path,
            start_workers=False,
        ) as stack,
    ):  # fmt: skip
        producer = Producer(stack.settings)
        job_ids = [str(_send(producer, i)) for i in range(5)]
        assert "None" not in job_ids
        (replica,) = (port for port in cluster.nodes if port != cluster.primary_port())
        cluster.nodes[replica].kill()
        # Refused, as an ambiguous answer: the write is on the primary, unconfirmed.
        assert _send(producer, 5) is None, "an enqueue no replica confirms is refused"

        stack.start_worker_supervisor()
        log = stack.log_path("workers")
        wait_for(lambda: log.exists() and "not confirmed by 1 replicas" in log.read_text(),
                 timeout_s=30, what="a claim left unconfirmed")  # fmt: skip
        assert ledger(stack) == [], "nothing is sent on an unconfirmed claim"

        cluster.rejoin(replica)
        # The producer repeats the refused enqueue with its key: one job, sent once.
        job_ids.append(wait_for(lambda: _send(producer, 5), timeout_s=20, what="enqueued"))
        records = settle_final(producer, job_ids)
        assert {r.state for r in records.values()} == {State.SENT}
        per_content = Counter(c["content_sha256"] for c in ledger(stack))
        assert per_content == {content_hash(_content(i)): 1 for i in range(6)}
