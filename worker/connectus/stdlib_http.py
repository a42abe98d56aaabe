"""An ``httpx`` transport over one stdlib ``http.client`` connection.

Why: on this workload (small JSON requests, one connection per pooled client,
see :class:`worker.connectus.transport.Transport`) httpcore + h11 spend about
0.6 ms of CPU per request in pure Python. Here ``http.client`` makes the
connection (TLS included) and :mod:`worker.connectus.http11` reads each answer
(``http.client``'s own reader parses headers with the ``email`` package, a
third of what is left), for a fraction of the CPU (``python -m
bench.http_clients`` measures both, ``docs/benchmarks.md`` has the figures).
Request URLs and headers are built once per client by
:class:`worker.connectus.requests_direct.DirectRequests`. Everything above the wire stays
httpx: the request is an ``httpx.Request``, the answer an ``httpx.Response``,
and every failure is raised as the httpx exception httpcore would raise for
the same moment, so :mod:`worker.connectus.classify` decides as before:

======================================  ==============================
what failed, when                       raised as
======================================  ==============================
connect timed out                       ``httpx.ConnectTimeout``
refused, DNS, TLS handshake             ``httpx.ConnectError``
writing the request timed out           ``httpx.WriteTimeout``
the socket broke while writing          ``httpx.WriteError``
waiting for / reading the answer        ``httpx.ReadTimeout``
the socket broke while reading          ``httpx.ReadError``
closed before or garbled the answer     ``httpx.RemoteProtocolError``
======================================  ==============================

Like httpcore, an idle connection is dropped when older than the keep-alive
expiry (s) or when the server has closed it (the socket is readable while no
request is pending), before a request is written on it: a stale connection
must not turn a send into an ambiguous one. Timeouts are per socket
operation, in seconds, from the request's ``timeout`` extension (httpx's),
kept on a non-blocking socket by :mod:`worker.connectus.sockio`.
One instance serves one request at a time; the caller's pool lends it.
"""

from __future__ import annotations

import http.client
import select
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from worker.connectus.http11 import read_answer
from worker.connectus.sockio import send_all

_NO_TIMEOUT = {"connect": None, "read": None, "write": None, "pool": None}


class StdlibHTTPTransport(httpx.BaseTransport):
    """One keep-alive HTTP/1.1 connection, made on first use and remade when stale.

    Accepts the keyword arguments :class:`httpx.HTTPTransport` is built with
    here (``verify``: an ``ssl.SSLContext``, or None for the default context,
    made on the first https request; ``limits``: its ``keepalive_expiry`` in
    seconds is honoured). There is no way to turn verification off.
    ``clock`` is monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl = verify
        expiry = None if limits is None else limits.keepalive_expiry
        self._expiry_s = expiry
        self._clock = clock
        self._conn: http.client.HTTPConnection | None = None
        self._origin: tuple[str, str, int] | None = None
        self._idle_since = 0.0
        self._poller = select.poll()

    def __repr__(self) -> str:
        return f"StdlibHTTPTransport(origin={self._origin!r}, open={self._conn is not None})"

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may still be found stale on next use)."""
        return self._conn is not None

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", _NO_TIMEOUT)
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        port = url.port or (443 if scheme == "https" else 80)
        conn = self._connection((scheme, url.host, port), timeouts["connect"], request)
        body = request.read()
        head = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1\r\n".encode("ascii")]
        for name, value in request.headers.raw:
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"\r\n")
        sock = conn.sock
        try:
            send_all(sock, b"".join(head) + body, timeout_s=timeouts["write"])
        except TimeoutError as exc:
            self.close()
            raise httpx.WriteTimeout(str(exc) or "write timed out", request=request) from exc
        except OSError as exc:
            self.close()
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc
        try:
            answer = read_answer(sock, request.method, timeout_s=timeouts["read"],
                                 poller=self._poller)  # fmt: skip
        except BaseException as exc:
            self.close()
            mapped = _read_failure(request, exc)
            if mapped is exc:
                raise
            raise mapped from exc
        if answer.will_close:
            self.close()
        else:
            self._idle_since = self._clock()
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            content=answer.content,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason.encode()},
        )

    def _connection(
        self, origin: tuple[str, str, int], connect_s: float | None, request: httpx.Request
    ) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and (origin != self._origin or self._stale()):
            self.close()
            conn = None
        if conn is not None:
            return conn
        scheme, host, port = origin
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            conn = http.client.HTTPSConnection(host, port, timeout=connect_s, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect_s)
        try:
            conn.connect()  # sets TCP_NODELAY; for https, the handshake too
        except TimeoutError as exc:
            conn.close()
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except OSError as exc:  # refused, DNS (gaierror), TLS (SSLError)
            conn.close()
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        self._conn, self._origin = conn, origin
        # Non-blocking from here on: timeouts are kept by worker.connectus.sockio,
        # with fewer syscalls (and GIL hand-offs) than a socket timeout costs.
        conn.sock.settimeout(0.0)
        # Made once per connection: the staleness check runs before every
        # request, and the reader waits for the answer with it.
        self._poller = select.poll()
        self._poller.register(conn.sock, select.POLLIN)
        return conn

    def _stale(self) -> bool:
        """Expired by age, or closed (or written to) by the server while idle."""
        if self._expiry_s is not None and self._clock() - self._idle_since > self._expiry_s:
            return True
        if self._conn is None or self._conn.sock is None:
            return True
        # poll, not select: select fails for descriptors above 1023.
        return bool(self._poller.poll(0))


def _read_failure(request: httpx.Request, exc: BaseException) -> BaseException:
    """The httpx exception for a failure while waiting for or reading the answer."""
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out", request=request)
    if isinstance(exc, (http.client.HTTPException, ValueError)):
        # RemoteDisconnected, BadStatusLine, IncompleteRead, LineTooLong...
        return httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, OSError):
        return httpx.ReadError(str(exc) or type(exc).__name__, request=request)
    return exc  # KeyboardInterrupt and the like: as they are
