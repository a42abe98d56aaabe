"""Socket I/O for the stdlib engine: per-operation timeouts with no syscall to spare.

Why: a worker process runs its sends on dozens of threads that share one
GIL, and every blocking syscall releases it. Under load each release is a
hand-off to another thread and back (two context switches, and a gap in
which no thread runs Python), so the number of syscalls per send, not
their own cost, bounds a process's throughput. A socket with a Python
timeout spends three syscalls where one does: ``settimeout`` is an
``ioctl`` each time (CPython sets the descriptor's blocking mode again),
and ``send``/``recv`` each ``poll`` first, even when the socket is ready.
Measured: making the write and read timeouts equal, which removes the two
``ioctl`` of a request, cut the worker's CPU per message by about 8%
(``docs/benchmarks.md``, ninth round).

So the engine keeps its socket non-blocking (``settimeout(0.0)`` once, after
connecting) and uses these helpers, which give the same timeouts:

- :func:`send_all` writes at once, and waits (``poll``, at most ``timeout_s``)
  only when the socket's buffer is full: one syscall for a request.
- :class:`SocketReader` waits for the answer (``poll``, at most ``timeout_s``
  per wait, as a socket timeout is per operation), then takes what arrived
  with one ``recv``: two syscalls for an answer that comes in one segment.

TLS sockets work the same: a TLS record cut in two (``SSLWantReadError``)
is waited for again, and bytes already decrypted (``pending()``) are read
without waiting. A timeout raises the builtin :class:`TimeoutError`, as a
socket timeout does; errors of the socket pass through.
"""

from __future__ import annotations

import math
import select
import socket
import ssl
import time
from typing import Any

#: Bytes asked of one ``recv`` (an answer of this client is well under it).
CHUNK = 65536

_WAIT_READ = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)
_WAIT_WRITE = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError)


def send_all(sock: socket.socket, data: bytes, *, timeout_s: float | None) -> None:
    """Write all of ``data``; raises TimeoutError when that takes over ``timeout_s`` (s).

    The timeout bounds the whole write, as ``socket.sendall``'s does.
    """
    view = memoryview(data)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while view:
        try:
            sent = sock.send(view)
        except _WAIT_WRITE:
            _wait(sock, select.POLLOUT, deadline)
            continue
        except ssl.SSLWantReadError:  # a TLS renegotiation reads first
            _wait(sock, select.POLLIN, deadline)
            continue
        view = view[sent:]


class SocketReader:
    """``readline(limit)`` and ``read(amount)`` over a socket, as ``socket.makefile("rb")``.

    Each wait for more bytes lasts at most ``timeout_s`` (s; None: no limit)
    and raises :class:`TimeoutError` when nothing came. ``poller`` is a
    ``select.poll`` with the socket registered for ``POLLIN`` (the engine
    keeps one per connection); one is made when not given. Bytes read past
    what the caller asked for stay here, and leave with the reader.
    """

    def __init__(
        self, sock: socket.socket, *, timeout_s: float | None, poller: Any | None = None
    ) -> None:
        self._sock = sock
        self._timeout_s = timeout_s
        if poller is None:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
        self._poller = poller
        # TLS: bytes decrypted but not yet read are invisible to poll.
        self._pending = getattr(sock, "pending", None)
        self._buf = b""
        self._eof = False

    def readline(self, limit: int) -> bytes:
        """Up to and including the next ``\\n``, at most ``limit`` bytes; b"" at the end."""
        while True:
            end = self._buf.find(b"\n", 0, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buf) >= limit or not self._fill():
                return self._take(limit)

    def read(self, amount: int = -1) -> bytes:
        """``amount`` bytes (fewer at the end of the stream); all of it to the end if < 0."""
        if amount < 0:
            while self._fill():
                pass
            return self._take(len(self._buf))
        while len(self._buf) < amount and self._fill():
            pass
        return self._take(amount)

    def _take(self, amount: int) -> bytes:
        data, self._buf = self._buf[:amount], self._buf[amount:]
        return data

    def _fill(self) -> bool:
        """Append what arrives next; False at the end of the stream."""
        if self._eof:
            return False
        deadline = None
        while True:
            if not (self._pending is not None and self._pending()):
                deadline = self._wait(deadline)
            try:
                chunk = self._sock.recv(CHUNK)
            except _WAIT_READ:  # woken for part of a TLS record, or spuriously
                continue
            if not chunk:
                self._eof = True
                return False
            self._buf += chunk
            return True

    def _wait(self, deadline: float | None) -> float | None:
        """Block until readable; the deadline (monotonic s) is set by the first wait."""
        if self._timeout_s is None:
            self._poller.poll()
            return None
        if deadline is None:
            deadline = time.monotonic() + self._timeout_s
        left_ms = _ceil_ms(deadline - time.monotonic())
        if left_ms <= 0 or not self._poller.poll(left_ms):
            raise TimeoutError("timed out")
        return deadline


def _wait(sock: socket.socket, event: int, deadline: float | None) -> None:
    """Block until ``sock`` is ready for ``event``, or raise at ``deadline`` (monotonic s)."""
    poller = select.poll()
    poller.register(sock, event)
    if deadline is None:
        poller.poll()
        return
    left_ms = _ceil_ms(deadline - time.monotonic())
    if left_ms <= 0 or not poller.poll(left_ms):
        raise TimeoutError("timed out")


def _ceil_ms(seconds: float) -> int:
    """Milliseconds for ``poll``, rounded up so that a short wait is not zero."""
    return max(0, math.ceil(seconds * 1000))
