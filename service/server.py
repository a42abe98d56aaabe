"""Running the service: :func:`run` in the foreground, :class:`ServiceServer` in a thread.

``ServiceServer`` is for tests and tools: a real uvicorn on a loopback port;
start-up is awaited through a ``threading.Event`` set by uvicorn's startup,
never a sleep.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from types import TracebackType
from typing import Any

import redis
import uvicorn
from starlette.applications import Starlette

from config import Settings
from service.app import build_app

STARTUP_TIMEOUT_S = 10.0
#: In-flight requests get this long to finish on SIGTERM, in s (k8s grace is 30 s).
SHUTDOWN_GRACE_S = 20


def uvicorn_config(app: Starlette, host: str, port: int, *, fast: bool = True) -> uvicorn.Config:
    """uvloop and httptools when installed (``fast``); our logging, not uvicorn's access log."""
    use_uvloop = fast and importlib.util.find_spec("uvloop") is not None
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if use_uvloop else "asyncio",
        http=http,
        access_log=False,  # the middleware logs each request, without the query (tokens)
        log_config=None,  # keep configure_logging's handlers: JSON and redaction
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        proxy_headers=True,
    )


def run(settings: Settings, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn drains in-flight requests first)."""
    uvicorn.Server(uvicorn_config(build_app(settings), host, port)).run()


class _ThreadServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        self._started_event.set()


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
        self._started = threading.Event()
        # asyncio in the thread, not uvloop: the test process keeps one loop policy.
        self._server = _ThreadServer(
            uvicorn_config(self.app, host, port, fast=False), self._started
        )
        self._thread = threading.Thread(target=self._serve, name="service-server", daemon=True)
        self._error: BaseException | None = None

    def _serve(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # SystemExit from uvicorn when the bind fails, too
            self._error = exc
        finally:
            self._started.set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServiceServer:
        self._thread.start()
        if not self._started.wait(STARTUP_TIMEOUT_S) or not self._server.started:
            self.stop()
            raise RuntimeError(f"service did not start: {self._error!r}")
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STARTUP_TIMEOUT_S)

    def __enter__(self) -> ServiceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
