"""The HTTP service in a thread, for tests and tools: :class:`ServiceServer`.

A real uvicorn on a loopback port, in a thread of :mod:`devtools.threaded_server`
(shared with the sandbox), whose start-up is awaited through an event set by
uvicorn's startup, never a sleep. Same app and uvicorn settings as
``connectus serve`` (:func:`service.server.uvicorn_config`).
"""

from __future__ import annotations

from types import TracebackType

import redis

from connectus_worker.config import Settings
from connectus_worker.service.app import build_app
from connectus_worker.service.server import uvicorn_config
from devtools.threaded_server import ThreadedServer


class ServiceServer:
    """``with ServiceServer(settings) as server:`` → ``server.base_url`` answers."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis_client: redis.Redis | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = build_app(settings, redis_client=redis_client)
        self.host = host
        self.port = port
        self._server = ThreadedServer(uvicorn_config(self.app, host, port), name="service")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServiceServer:
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> ServiceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
