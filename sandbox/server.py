"""Running the sandbox: ``run()`` in the foreground, ``SandboxServer`` in a thread.

``run(host=..., port=..., config=...)`` serves with uvicorn (uvloop and httptools
when installed, access log off). ``SandboxServer`` is for tests and demos::

    with SandboxServer(config) as server:        # binds 127.0.0.1:0
        httpx.get(server.base_url + "/_sandbox/health")
        server.state.tick(...)                    # the live state, same process

The thread and the start-up wait (an event set by uvicorn's startup, not a sleep)
are :mod:`devtools.threaded_server`'s, shared with the service.
"""

from __future__ import annotations

import importlib.util
import logging
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from devtools.threaded_server import ThreadedServer
from sandbox.app import build_app
from sandbox.config import SandboxConfig
from sandbox.faults import ConnectionDropped
from sandbox.state import SandboxState
from sandbox.web import Runtime


class _HideDroppedConnections(logging.Filter):
    """uvicorn logs an app exception after the response started; a dropped-connection
    fault is deliberate, so its traceback is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedConnections) for f in logger.filters):
        logger.addFilter(_HideDroppedConnections())


def uvicorn_config(app: Starlette, host: str, port: int, **extra: Any) -> uvicorn.Config:
    fast = importlib.util.find_spec("uvloop") is not None
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if fast else "asyncio",
        http=http,
        access_log=False,
        lifespan="on",
        log_level="warning",
        **extra,
    )


def run(*, host: str, port: int, config: SandboxConfig) -> None:
    """Serve the sandbox until interrupted."""
    _install_log_filter()
    uvicorn.Server(uvicorn_config(build_app(config), host, port)).run()


class SandboxServer:
    """A real uvicorn sandbox on a loopback port, in a background thread."""

    def __init__(self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:  # fmt: skip
        self.config = config or SandboxConfig()
        self.app = build_app(self.config)
        self.host = host
        self._port = port
        self._server = ThreadedServer(uvicorn_config(self.app, host, port), name="sandbox")

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.state.runtime
        return rt

    @property
    def state(self) -> SandboxState:
        return self.runtime.state

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def start(self) -> SandboxServer:
        _install_log_filter()
        self._port = self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()
