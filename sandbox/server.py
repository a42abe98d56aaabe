"""Running the sandbox: ``run()`` in the foreground, ``SandboxServer`` in a thread.

``run(host=..., port=..., config=...)`` serves with uvicorn (uvloop and httptools
when installed, access log off). ``SandboxServer`` is for tests and demos::

    with SandboxServer(config) as server:        # binds 127.0.0.1:0
        httpx.get(server.base_url + "/_sandbox/health")
        server.state.tick(...)                    # the live state, same process

Start-up is awaited through a ``threading.Event`` set by uvicorn's startup, not a sleep.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from sandbox.app import build_app
from sandbox.config import SandboxConfig
from sandbox.faults import ConnectionDropped
from sandbox.state import SandboxState
from sandbox.web import Runtime

STARTUP_TIMEOUT_S = 10.0


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


class _ThreadServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        self._started_event.set()


class SandboxServer:
    """A real uvicorn sandbox on a loopback port, in a background thread."""

    def __init__(self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:  # fmt: skip
        self.config = config or SandboxConfig()
        self.app = build_app(self.config)
        self.host = host
        self._port = port
        self._started = threading.Event()
        # The thread's own loop is asyncio (not uvloop) so tests keep one loop policy.
        cfg = uvicorn_config(self.app, host, port)
        cfg.loop = "asyncio"
        self._server = _ThreadServer(cfg, self._started)
        self._thread = threading.Thread(target=self._serve, name="sandbox-server", daemon=True)
        self._error: BaseException | None = None

    def _serve(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # SystemExit from uvicorn on bind failure, too
            self._error = exc
        finally:
            self._started.set()

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
        self._thread.start()
        if not self._started.wait(STARTUP_TIMEOUT_S) or not self._server.started:
            self.stop()
            raise RuntimeError(f"sandbox did not start: {self._error!r}")
        sockets = [s for server in self._server.servers for s in server.sockets]
        self._port = sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STARTUP_TIMEOUT_S)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()
