"""The supervisor's endpoint: one /metrics per pod that sums every child's counters."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from connectus_worker.config import Settings
from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from connectus_worker.worker.health import HealthServer, health_app, health_redis, redis_check
from devtools.embedded_redis import free_port
from devtools.stack import LocalStack
from tests.support.stack_checks import child_pids, settle
from tests.support.waiting import wait_for

NUMBER = "+56 9 8765 4321"


def scrape(stack: LocalStack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the supervisor's /metrics, by name and sorted labels."""
    text = httpx.get(f"{stack.metrics_url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def status(stack: LocalStack, path: str) -> int:
    """The endpoint's HTTP status for ``path``, or 0 while it does not answer yet."""
    try:
        return httpx.get(f"{stack.metrics_url}{path}", timeout=5).status_code
    except httpx.TransportError:
        return 0


def sends(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], outcome: str) -> float:
    return sum(
        v for (name, labels), v in samples.items()
        if name == "connectus_worker_sends_total" and ("outcome", outcome) in labels
    )  # fmt: skip


def test_one_endpoint_sums_every_child_and_shows_queue_gauges(
    make_stack: Callable[..., LocalStack],
) -> None:
    port = free_port()
    stack = make_stack(processes=2, threads=2, env={"WORKER_METRICS_PORT": str(port)})
    assert stack.workers is not None and stack.metrics_url.endswith(f":{port}")
    wait_for(lambda: status(stack, "/readyz") == 200, timeout_s=30, what="/readyz 200")
    assert httpx.get(f"{stack.metrics_url}/healthz", timeout=5).json() == {"status": "ok"}
    producer = Producer(stack.settings)
    scheduled = producer.send_sms(NUMBER, "later", deliver_at=datetime.now(UTC) + timedelta(days=1))
    first = [producer.send_sms(NUMBER, f"Hola {i}") for i in range(6)]
    assert all(r.state == State.SENT for r in settle(producer, first).values())
    assert wait_for(lambda: sends(scrape(stack), "sent") == 6, timeout_s=10, what="6 counted")

    # Kill both children: their replacements are new processes with files of
    # their own, and the dead ones' counts must stay in the sum.
    old = child_pids(stack.workers.pid)
    assert len(old) == 2
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: len(child_pids(stack.workers.pid) - old) == 2, timeout_s=30, what="2 new children"
    )
    second = [producer.send_sms(NUMBER, f"Otra {i}") for i in range(6)]
    assert all(r.state == State.SENT for r in settle(producer, second).values())
    samples = wait_for(
        lambda: s if sends(s := scrape(stack), "sent") >= 12 else None,
        timeout_s=10,
        what="12 sends counted",
    )
    assert sends(samples, "sent") == 12
    assert (
        samples[
            (
                "connectus_worker_sends_total",
                (("account", "default"), ("kind", "sms"), ("outcome", "sent")),
            )
        ]
        == 12
    )
    assert samples[("connectus_worker_send_duration_seconds_count", (("kind", "sms"),))] == 12
    assert samples[("connectus_worker_process_restarts_total", ())] == 2
    assert samples[("connectus_worker_processes", ())] == 2
    assert samples[("connectus_worker_redis_up", ())] == 1
    assert samples[("connectus_worker_scheduled_jobs", ())] == 1
    assert producer.get_status(scheduled).state == State.SCHEDULED
    assert samples[("connectus_worker_queue_messages", (("queue", "transactional"),))] == 0
    assert samples[("connectus_worker_dead_letter_jobs", ())] == 0
    breaker_labels = (("account", "default"), ("reason", ""), ("scope", "account"))
    assert samples[("connectus_worker_breaker_state", breaker_labels)] == 0


def test_the_endpoint_on_a_port_0_bind_answers_with_redis_up_and_down(redis_url: str) -> None:
    up = health_redis(Settings(redis_url=redis_url))
    # nothing listens there
    down = health_redis(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    registry = CollectorRegistry()
    servers = [
        HealthServer(
            health_app(registry=registry, live=lambda: (True, "ok"), ready=[redis_check(c)]),
            host="127.0.0.1",
            port=0,
        ).start()
        for c in (up, down)
    ]
    try:
        ports = [s.port for s in servers]
        assert all(ports) and ports[0] != ports[1]
        get = [lambda path, p=p: httpx.get(f"http://127.0.0.1:{p}{path}", timeout=5) for p in ports]
        assert get[0]("/readyz").status_code == 200
        answer = get[1]("/readyz")
        assert answer.status_code == 503 and "Redis" in answer.json()["reason"]
        assert get[1]("/healthz").status_code == 200
        assert get[0]("/metrics").headers["content-type"].startswith("text/plain")
    finally:
        for server in servers:
            server.stop()
        up.close()
        down.close()
