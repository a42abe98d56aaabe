"""Minimal reproductions of the bugs the chaos test found (one job each).

Each test states the promise (the job settles, charged at most once). One
that reproduced an open bug was ``xfail(strict=True)`` until it was fixed
(Redis down while recording an outcome: see worker/ledger.py).
worker/ and  are owned by the lead; these tests only observe them.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from connectus_worker.config import load_settings
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.worker.app import lease_ms
from devtools.embedded_redis import RedisServer
from devtools.stack import LocalStack
from tests.chaos.harness import CHAOS_ENV, sms_content
from tests.support.stack_checks import child_pids
from tests.support.waiting import wait_for

# One in-process attempt, short HTTP timeouts and an 8 s margin: the send
# lease is then 1 x (1 + 5 + 0.01) + 8 s = 14 s (worker.app.lease_ms), still
# well after a killed worker's message comes back (heartbeat 5 + maintenance 1).
SHORT_LEASE = {
    "RETRY_ATTEMPTS": "1",
    "CONNECTUS_CONNECT_TIMEOUT_S": "1",
    "CONNECTUS_READ_TIMEOUT_S": "5",
    "CONNECTUS_WRITE_TIMEOUT_S": "1",
    "RETRY_INITIAL_BACKOFF_MS": "10",
    "RETRY_MAX_BACKOFF_MS": "10",
    "LEASE_MARGIN_S": "8",
}
LEASE_S = lease_ms(load_settings({**CHAOS_ENV, **SHORT_LEASE})) / 1000
# After the lease: a redelivery or the reconciler has heartbeat (5) +
# maintenance (1) + RECONCILE_AFTER_S (1) + RECONCILE_WINDOW_S (3) + passes.
SETTLE_AFTER_LEASE_S = 25
SETTLED = {"sent", "failed"}


def _state(producer: Producer, job_id: str) -> str:
    try:
        return producer.get_status(job_id).state.value
    except (redis.ConnectionError, redis.TimeoutError):
        return "redis-down"


def _sandbox_stats(stack: LocalStack) -> dict[str, Any]:
    return dict(httpx.get(f"{stack.sandbox_url}/_sandbox/stats", timeout=10).json())


def _charges(stack: LocalStack) -> int:
    return int(_sandbox_stats(stack)["charges"])


def _wait_mid_send(producer: Producer, stack: LocalStack, job_id: str) -> None:
    """Until the send is with the sandbox (held there by its latency, not charged yet).

    The job's ``sending`` is not enough: it is written by the claim, whose answer the
    worker may not have read yet; killing Redis then (a loaded box makes that window
    wide) leaves the worker waiting for Redis to claim, and nothing is ever sent.
    """
    wait_for(lambda: _state(producer, job_id) == "sending", timeout_s=30, what="the job claimed")
    wait_for(
        lambda: _sandbox_stats(stack)["sends_in_flight"] == 1,
        timeout_s=30,
        interval_s=0.02,
        what="the send with the sandbox",
    )


def _evidence(producer: Producer, job_id: str) -> dict[str, Any]:
    keys = Keys(producer.settings.key_prefix)
    ns = keys.dramatiq_namespace
    client = producer.redis
    record = {k.decode(): v.decode() for k, v in client.hgetall(keys.job(job_id)).items()}
    dramatiq_keys = {
        name.decode(): client.type(name).decode() for name in client.scan_iter(f"{ns}*")
    }
    return {
        "dramatiq_keys": dramatiq_keys,
        "record": {k: v for k, v in record.items() if k not in ("fingerprint",)},
        "dramatiq_xq": client.zcard(f"{ns}:transactional.XQ"),
        "queue": client.llen(f"{ns}:transactional"),
        "unknown_set": client.zscore(keys.unknown, job_id),
        "review_set": client.zscore(keys.review, job_id),
    }


@pytest.mark.chaos
@pytest.mark.timeout(180)  # past the deadlines below, stretched on a loaded box
def test_a_job_whose_worker_died_mid_send_settles(
    killable_stack: Callable[..., LocalStack],
) -> None:
    """Found by the chaos run (fixed in ledger.jobs.JobStore.defer): the redelivery of
    a message whose worker was SIGKILLed mid-send comes back (heartbeat +
    maintenance, 6 s) before the lease expires (14 s); CLAIM answered 'busy' and
    the message was acked, leaving the job 'sending' for ever."""
    stack = killable_stack(sandbox_flags={"latency_ms": 2000}, env=SHORT_LEASE)
    producer = Producer(stack.settings)
    job_id = producer.send_sms(
        "+56 9 8765 4321", sms_content("repro-kill"), idempotency_key="repro-kill"
    )
    _wait_mid_send(producer, stack, job_id)
    assert stack.workers is not None
    (child,) = child_pids(stack.workers.pid)
    os.kill(child, signal.SIGKILL)
    try:
        wait_for(
            lambda: _state(producer, job_id) in SETTLED,
            timeout_s=LEASE_S + SETTLE_AFTER_LEASE_S,
            what="the job to settle",
            interval_s=0.2,
        )
    except TimeoutError as exc:
        raise AssertionError(f"job never settled: {_evidence(producer, job_id)}") from exc
    assert _charges(stack) <= 1
    # The case reproduced: the redelivery came back while the dead worker's lease was live.
    assert _claims(stack, job_id)[0] == "busy", _claims(stack, job_id)


def _claims(stack: LocalStack, job_id: str) -> list[str]:
    """The claim answers that made the worker skip ``job_id``, in order (its JSON log)."""
    answers = []
    for line in stack.log_path("workers").read_text(errors="replace").splitlines():
        if job_id in line and '"job.skipped"' in line:
            answers.append(json.loads(line)["claim"])
    return answers


@pytest.mark.chaos
@pytest.mark.timeout(180)  # past the deadlines below, stretched on a loaded box
def test_a_send_whose_outcome_could_not_be_recorded_settles(
    killable_stack: Callable[..., LocalStack], private_redis: RedisServer
) -> None:
    stack = killable_stack(sandbox_flags={"latency_ms": 2000}, env=SHORT_LEASE)
    producer = Producer(stack.settings)
    job_id = producer.send_sms(
        "+56 9 8765 4321", sms_content("repro-redis"), idempotency_key="repro-redis"
    )
    _wait_mid_send(producer, stack, job_id)
    assert _charges(stack) == 0
    private_redis.kill()
    log = stack.log_path("workers")
    # The sandbox accepts and charges; then the worker can't record it. Before
    # the fix the error escaped the actor ("Failed to process message") and the
    # message was acked; now the ledger write waits for Redis to come back.
    wait_for(lambda: _charges(stack) == 1, timeout_s=30, what="the sandbox's charge")
    wait_for(
        lambda: "ledger.redis_unavailable" in log.read_text(errors="replace"),
        timeout_s=30,
        what="the worker waiting for Redis to record the outcome",
    )
    private_redis.restart()
    try:
        wait_for(
            lambda: _state(producer, job_id) in SETTLED,
            timeout_s=LEASE_S + SETTLE_AFTER_LEASE_S,
            what="the job to settle",
            interval_s=0.2,
        )
    except TimeoutError as exc:
        raise AssertionError(f"job never settled: {_evidence(producer, job_id)}") from exc
    assert _state(producer, job_id) == "sent"
    assert _charges(stack) == 1
    assert "Failed to process message" not in log.read_text(errors="replace")
