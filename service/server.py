"""Running the service: :func:`run` in the foreground, :class:`ServiceServer` in a thread.

``ServiceServer`` is for tests and tools: a real uvicorn on a loopback port,
in a thread of :mod:`core.threaded_server` (shared with the sandbox), whose
start-up is awaited through an event set by uvicorn's startup, never a sleep.
"""

from __future__ import annotations

import importlib.util
from types import TracebackType

import redis
import uvicorn
from starlette.applications import Starlette

from config import Settings
from core.threaded_server import ThreadedServer
from service.app import build_app

#: In-flight requests get this long to finish on SIGTERM, in s (k8s grace is 30 s).
SHUTDOWN_GRACE_S = 20


def uvicorn_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """uvloop and httptools when installed; our logging, not uvicorn's access log."""
    use_uvloop = importlib.util.find_spec("uvloop") is not None
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
