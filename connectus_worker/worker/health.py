"""The supervisor's HTTP endpoint: ``/metrics``, ``/healthz``, ``/readyz``.

A stdlib WSGI server in a daemon thread of ``connectus worker``, on
``WORKER_METRICS_HOST:WORKER_METRICS_PORT``; the children never serve HTTP.
``/healthz``: 200 while the supervisor loop is alive and a child is running or due to
be respawned. ``/readyz``: 200 when Redis answers PING within :data:`READY_TIMEOUT_S`
and a child is running. Else 503.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from redis.backoff import NoBackoff
from redis.retry import Retry

from connectus_worker.config import Settings
from connectus_worker.ledger.keys import Keys
from connectus_worker.redis import connect
from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.metrics import (
    BreakerCollector,
    QueueCollector,
    SupervisorCollector,
    supervisor_registry,
)
from connectus_worker.worker.supervisor import Supervisor

#: /readyz answers 503 if Redis has not answered PING within this many seconds.
READY_TIMEOUT_S = 1.0

Check = Callable[[], tuple[bool, str]]
StartResponse = Callable[..., Any]


def health_redis(settings: Settings) -> redis.Redis:
    """A client for readiness pings: 1 s socket timeouts (s) and no retries,
    so a PING answers or fails within about :data:`READY_TIMEOUT_S`."""
    return connect(
        settings,
        connect_timeout_s=READY_TIMEOUT_S,
        socket_timeout_s=READY_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


def redis_check(
    client: redis.Redis,
    *,
    timeout_s: float = READY_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> Check:
    """``() -> (ok, why)``: did Redis answer PING within ``timeout_s`` (s)?"""

    def check() -> tuple[bool, str]:
        started = clock()
        try:
            client.ping()
        except redis.RedisError as exc:
            return False, f"Redis is not answering: {type(exc).__name__}"
        elapsed = clock() - started
        if elapsed > timeout_s:
            return False, f"Redis answered PING in {elapsed:.2f} s (> {timeout_s} s)"
        return True, "redis ok"

    return check


def health_app(
    *, registry: CollectorRegistry, live: Check, ready: Iterable[Check]
) -> Callable[[dict[str, Any], StartResponse], list[bytes]]:
    """The WSGI app; ``live`` decides /healthz, every check of ``ready`` /readyz."""
    metrics = make_wsgi_app(registry)
    ready_checks = tuple(ready)

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if environ.get("REQUEST_METHOD") != "GET":
            return _answer(start_response, 405, {"error": "use GET"})
        checks: tuple[Check, ...]
        if path == "/healthz":
            checks, word = (live,), "ok"
        elif path == "/readyz":
            checks, word = ready_checks, "ready"
        else:
            return _answer(start_response, 404, {"error": "not found"})
        for check in checks:
            ok, why = check()
            if not ok:
                return _answer(start_response, 503, {"status": "unavailable", "reason": why})
        return _answer(start_response, 200, {"status": word})

    return app


def _answer(start_response: StartResponse, code: int, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{code} {HTTPStatus(code).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood stderr; say nothing."""


class HealthServer:
    """Serves ``app`` on ``host:port`` from a daemon thread; ``port=0`` picks a free one."""

    def __init__(self, app: Callable[..., list[bytes]], *, host: str, port: int) -> None:
        # Daemon request threads: a hung request never holds the process at exit.
        self.server = make_server(host, port, app, ThreadingWSGIServer, _QuietHandler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="health-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_supervisor_endpoint(
    settings: Settings, supervisor: Supervisor, multiproc_dir: Path | None
) -> HealthServer | None:
    """Serve the pod's endpoint for ``supervisor``; None if ``WORKER_METRICS_PORT`` is 0.

    Raises OSError if the address can't be bound. The Redis client here is
    the endpoint's own (1 s timeouts, no retries), so a slow Redis can hold
    a scrape or a probe for about a second, never the send path.
    """
    if settings.worker_metrics_port == 0:
        return None
    client = health_redis(settings)
    breakers = [CircuitBreaker.from_settings(settings, client, n) for n in settings.account_names]
    registry = supervisor_registry(
        multiproc_dir,
        [
            QueueCollector(client, Keys(settings.key_prefix), settings.queues),
            BreakerCollector(breakers),
            SupervisorCollector(supervisor.running, lambda: supervisor.restarts),
        ],
    )
    app = health_app(
        registry=registry,
        live=supervisor.liveness,
        ready=[redis_check(client), supervisor.readiness],
    )
    server = HealthServer(app, host=settings.worker_metrics_host, port=settings.worker_metrics_port)
    return server.start()
