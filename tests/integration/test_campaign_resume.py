"""A campaign survives the two worst restarts, and still charges each recipient once.

- Every worker process (the supervisor and its children) SIGKILLed mid-campaign,
  then started again.
- Redis SIGKILLed mid-campaign and restarted on the same port from its AOF
  (``appendfsync always``, as docker-compose.yml runs it).

After either, the campaign finishes with every recipient charged exactly
once (the sandbox's ledger) and nobody skipped.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from connectus_worker.campaign.model import CampaignState, Transport
from connectus_worker.campaign.options import CampaignOptions
from devtools.embedded_redis import RedisServer
from devtools.stack import LocalStack
from tests.support.stack_checks import (
    CAMPAIGN_ENV,
    FAST,
    campaign_tools,
    charge_count,
    charged_per_dst,
    child_pids,
    ledger,
    numbers,
)
from tests.support.waiting import wait_for

RESUME_ENV = {
    **FAST,
    **CAMPAIGN_ENV,
    "BROKER_HEARTBEAT_TIMEOUT_S": "3",
    "BROKER_MAINTENANCE_INTERVAL_S": "1",
    "CONNECTUS_READ_TIMEOUT_S": "3",
    "CONNECTUS_WRITE_TIMEOUT_S": "1",
    "RETRY_ATTEMPTS": "1",
    "RECONCILE_AFTER_S": "0.5",
    "RECONCILE_WINDOW_S": "2",
    "RECONCILE_INTERVAL_S": "0.5",
    # Sends cut by the kill wait out their lease before they are reconciled:
    # 1 x (3 + 1 + 3 + 0.1) + 2 = 9.1 s (worker.app.lease_ms), not the default 53 s.
    "LEASE_MARGIN_S": "2",
}


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(appendonly=True, dir=tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.close()


def _stack(url: str, tmp_path: Path, prefix: str, threads: int = 2) -> LocalStack:
    env = {**RESUME_ENV, "KEY_PREFIX": prefix}
    stack = LocalStack(redis_url=url, env=env, log_dir=tmp_path, processes=2, threads=threads,
                       sandbox_flags={"latency_ms": 100})  # fmt: skip
    stack.start()
    return stack


@pytest.mark.parametrize("transport", [Transport.V3, Transport.V1_BULK])
def test_every_worker_sigkilled_mid_campaign_then_restarted(
    aof_redis: RedisServer, tmp_path: Path, transport: Transport
) -> None:
    # 8 threads a process: the recipients the kill cut are resent one by one.
    stack = _stack(aof_redis.url, tmp_path, "resume-kill", threads=8)
    try:
        producer, control = campaign_tools(stack)
        # One chunk of 1,000 for v1_bulk (a call charges dozens at once, so the kill
        # still finds most unsent); 150 single sends for v3.
        dsts = numbers(1_000 if transport is Transport.V1_BULK else 150, start=70_000)
        options = CampaignOptions(name="kill", text="Hola {name}", transport=transport)
        cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
        wait_for(lambda: charge_count(stack) >= 20, timeout_s=60, what="the campaign under way")
        assert stack.workers is not None
        supervisor = stack.workers.pid
        victims = [supervisor, *child_pids(supervisor)]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        assert len(ledger(stack)) < len(dsts), "the kill came after the campaign ended"
        stack.workers.wait()
        for pid in victims[1:]:
            wait_for(lambda pid=pid: not _alive(pid), timeout_s=10, what=f"pid {pid} gone")
        assert control.get(cid).state is CampaignState.RUNNING
        stack.start_worker_supervisor()
        wait_for(lambda: control.get(cid).state is CampaignState.FINISHED, timeout_s=180,
                 what="the campaign to finish after the restart")  # fmt: skip
        charges = charged_per_dst(stack)
        assert set(charges) == set(dsts), "someone was skipped"
        assert set(charges.values()) == {1}, "someone was charged twice"
        counts = control.status(cid).counts
        # Sends cut by the kill are unknown until reconciled, then sent.
        wait_for(lambda: control.status(cid).counts == {"sent": len(dsts)}, timeout_s=60,
                 what=f"every job reconciled to sent (now {counts})")  # fmt: skip
    finally:
        stack.stop(drain=False)


def test_redis_restarted_from_its_aof_mid_campaign(aof_redis: RedisServer, tmp_path: Path) -> None:
    stack = _stack(aof_redis.url, tmp_path, "resume-aof")
    try:
        producer, control = campaign_tools(stack)
        dsts = numbers(600, start=80_000)
        options = CampaignOptions(name="aof", text="Hola {name}")
        cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
        wait_for(lambda: charge_count(stack) >= 150, timeout_s=60, what="the campaign under way")
        aof_redis.kill()
        assert len(ledger(stack)) < len(dsts), "the kill came after the campaign ended"
        aof_redis.restart()

        def finished() -> bool:
            try:
                return control.get(cid).state is CampaignState.FINISHED
            except redis.ConnectionError:  # this test's own client, while Redis loads its AOF
                return False

        wait_for(finished, timeout_s=180, what="the campaign to finish after the Redis restart")
        charges = charged_per_dst(stack)
        assert set(charges) == set(dsts), "someone was skipped"
        assert set(charges.values()) == {1}, "someone was charged twice"
    finally:
        stack.stop(drain=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
