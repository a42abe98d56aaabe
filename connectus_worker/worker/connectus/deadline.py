"""The request deadline while httpx waits for an answer's head.

httpx hands over nothing until the head is complete and each read may wait the
whole read timeout, so a server trickling its head holds a request as long as it
likes. :class:`Watchdog` shuts down the socket of a request past its deadline, so
the blocked read returns. The socket comes from httpcore's public ``trace``
extension; each thread's client holds one connection. Times are seconds (s).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

import httpx


class Lane:
    """One thread's client, its connection's socket and its request's deadline."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.sock: socket.socket | None = None
        self.deadline: float | None = None  # None: no request in flight
        self.lock = threading.Lock()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: keeps the socket of each new connection."""
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            if stream is not None:
                self.sock = stream.get_extra_info("socket")

    def start(self, deadline: float) -> None:
        with self.lock:
            self.deadline = deadline

    def finish(self) -> None:
        with self.lock:
            self.deadline = None

    def cut_if_overdue(self, now: float) -> None:
        """Shut down the socket if the request in flight is past its deadline."""
        with self.lock:
            if self.deadline is None or now <= self.deadline or self.sock is None:
                return
            self.deadline = None  # once
            sock = self.sock
        # OSError: already closed, the request is ending anyway.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """A daemon thread, started with the first lane, that cuts overdue requests
    every ``tick_s`` (s): at most ``tick_s`` after their deadline."""

    def __init__(self, clock: Callable[[], float], tick_s: float) -> None:
        self._clock = clock
        self._tick_s = tick_s
        self._lanes: list[Lane] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, lane: Lane) -> None:
        with self._lock:
            self._lanes.append(lane)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="connectus-deadline", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _run(self) -> None:
        while not self._stopped.wait(self._tick_s):
            now = self._clock()
            with self._lock:
                lanes = list(self._lanes)
            for lane in lanes:
                lane.cut_if_overdue(now)
