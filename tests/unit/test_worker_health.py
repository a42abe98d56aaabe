"""The supervisor's /healthz, /readyz and /metrics, called as a WSGI app (no sockets)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from typing import Any
from wsgiref.util import setup_testing_defaults

import fakeredis
import pytest
from prometheus_client import CollectorRegistry, Counter

from connectus_worker.worker.health import health_app, redis_check
from connectus_worker.worker.supervisor import Supervisor


def call(app: Any, path: str, method: str = "GET") -> tuple[int, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, _headers: status.append(s)))
    return int(status[0].split()[0]), body


class FakeProcess:
    """A child that runs until ``code`` is set."""

    pid_counter = 1000

    def __init__(self) -> None:
        FakeProcess.pid_counter += 1
        self.pid = FakeProcess.pid_counter
        self.code: int | None = None

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, signum: int) -> None:
        self.code = -signum

    def wait(self, timeout: float | None = None) -> int | None:
        return self.code


def supervisor(processes: int = 2) -> tuple[Supervisor, list[FakeProcess], list[int]]:
    spawned: list[FakeProcess] = []
    reaped: list[int] = []

    def popen(_command: Sequence[str]) -> subprocess.Popen[bytes]:
        spawned.append(FakeProcess())
        return spawned[-1]  # type: ignore[return-value]

    sup = Supervisor(processes=processes, command=["x"], grace_s=1, popen=popen,
                     on_exit=reaped.append)  # fmt: skip
    return sup, spawned, reaped


def app_for(sup: Supervisor, client: fakeredis.FakeRedis) -> Any:
    registry = CollectorRegistry()
    Counter(
        "probe_total", "A counter, to see /metrics serves the registry.", registry=registry
    ).inc()
    return health_app(
        registry=registry, live=sup.liveness, ready=[redis_check(client), sup.readiness]
    )


def test_ready_and_live_once_children_run_and_redis_answers() -> None:
    sup, _, _ = supervisor()
    now = time.monotonic()  # the supervisor's clock
    server = fakeredis.FakeServer()
    app = app_for(sup, fakeredis.FakeRedis(server=server))
    assert call(app, "/readyz")[0] == 503  # no child yet
    sup.step(now)
    assert call(app, "/healthz") == (200, b'{"status": "ok"}')
    assert call(app, "/readyz") == (200, b'{"status": "ready"}')
    server.connected = False
    code, body = call(app, "/readyz")
    assert code == 503 and "Redis is not answering" in json.loads(body)["reason"]
    assert call(app, "/healthz")[0] == 200  # Redis is not the supervisor's liveness
    status, text = call(app, "/metrics")
    assert status == 200 and b"probe_total 1.0" in text
    assert call(app, "/nope")[0] == 404 and call(app, "/healthz", "POST")[0] == 405


def test_a_dead_child_is_reaped_and_readiness_follows_the_running_ones() -> None:
    sup, spawned, reaped = supervisor(processes=1)
    now = time.monotonic()  # the supervisor's clock
    app = app_for(sup, fakeredis.FakeRedis())
    sup.step(now)
    spawned[0].code = -9
    sup.step(now + 1.0)  # reaped; respawn is due later (backoff)
    assert reaped == [spawned[0].pid] and sup.running() == 0
    assert call(app, "/readyz")[0] == 503
    assert call(app, "/healthz")[0] == 200  # being respawned counts as alive
    sup.step(now + 10.0)
    assert sup.running() == 1 and call(app, "/readyz")[0] == 200


@pytest.mark.parametrize("why", ["misconfigured", "stalled", "finished"])
def test_liveness_fails_when_no_child_can_run_or_the_loop_is_gone(why: str) -> None:
    sup, spawned, _ = supervisor(processes=1)
    now = time.monotonic()  # the supervisor's clock
    app = app_for(sup, fakeredis.FakeRedis())
    sup.step(now)
    assert call(app, "/healthz")[0] == 200
    if why == "misconfigured":
        spawned[0].code = 78
        sup.step(now + 1.0)
    elif why == "stalled":
        sup.step(time.monotonic() - 60)  # the loop last went round a minute ago
    else:
        sup.stopping.set()
        assert sup.run() == 0  # drained (its child was told to stop) and returned
    code, body = call(app, "/healthz")
    assert code == 503 and json.loads(body)["status"] == "unavailable"


def test_a_slow_ping_is_not_ready() -> None:
    client = fakeredis.FakeRedis()
    ticks = iter([0.0, 1.5])
    ok, why = redis_check(client, timeout_s=1.0, clock=lambda: next(ticks))()
    assert not ok and "1.50 s" in why
