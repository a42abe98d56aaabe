"""Serve an ASGI app with uvicorn in a background thread (tests, demos, tools).

Shared by ``sandbox.server.SandboxServer`` and ``service.server.ServiceServer``,
which must not import each other. Start-up is awaited through a
``threading.Event`` set by uvicorn's own startup, never a sleep::

    server = ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=0), name="sandbox")
    port = server.start()   # the bound port (port 0 picks a free one)
    ...
    server.stop()
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import uvicorn

#: How long start-up and shutdown may take, in s.
STARTUP_TIMEOUT_S = 10.0


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        self._started_event.set()


class ThreadedServer:
    """uvicorn serving ``config`` in a daemon thread named ``<name>-server``.

    The thread runs a plain asyncio loop whatever ``config.loop`` says: the
    test process keeps one event loop policy (no uvloop installed behind its back).
    """

    def __init__(self, config: uvicorn.Config, *, name: str) -> None:
        config.loop = "asyncio"
        self.name = name
        self._started = threading.Event()
        self._server = _Server(config, self._started)
        self._thread = threading.Thread(target=self._serve, name=f"{name}-server", daemon=True)
        self._error: BaseException | None = None

    def _serve(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # SystemExit from uvicorn when the bind fails, too
            self._error = exc
        finally:
            self._started.set()

    def start(self) -> int:
        """Start serving; return the bound port once uvicorn listens.

        Raises RuntimeError (naming the cause) if it did not start within
        ``STARTUP_TIMEOUT_S``.
        """
        self._thread.start()
        if not self._started.wait(STARTUP_TIMEOUT_S) or not self._server.started:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self._error!r}")
        sockets = [s for server in self._server.servers for s in server.sockets]
        port: int = sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        """Ask uvicorn to exit (in-flight requests finish) and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STARTUP_TIMEOUT_S)
