"""The transport's connection pool: single-connection clients lent one at a time.

The pool half of :class:`worker.connectus.transport.Transport` (a mixin over
its attributes, which ``Transport.__init__`` sets): making the pooled
``httpx.Client`` objects, lending them to one request at a time, taking them
back, and closing them. Split from :mod:`worker.connectus.transport` (size
guideline), which keeps the single ``call`` that turns answers into errors.
Like the rest of the client, this knows nothing of Dramatiq.

Timeouts are seconds (s).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


class ClientPool:
    """The pool: ``pool_size`` single-connection ``httpx.Client`` objects.

    They are made on first need and lent to one request at a time (the most
    recently returned first, so its connection is warm). httpcore's own pool
    keeps one lock per pool and scans every connection under it on each
    request start and end; shared by 64 threads, that lock was most of a
    send's wall time. With one connection per client that scan is constant
    and the lock is never contended; lending a client costs a semaphore and
    a deque pop.

    Each client is made on the direct path (its own ``httpx.HTTPTransport``,
    which ``Transport.call`` sends to) unless ``direct`` is false: a proxy in
    the environment, or an injected transport (then one client serves every
    thread).
    """

    timeout: httpx.Timeout
    limits: httpx.Limits
    direct: bool
    _headers: dict[str, str]
    _injected: httpx.BaseTransport | None
    _make_http_transport: Callable[..., httpx.BaseTransport]
    _make_http_client: Callable[..., httpx.Client]
    _one_connection: httpx.Limits
    _pool_timeout_s: float
    _ssl_context: Any
    _lock: threading.Lock
    _permits: threading.BoundedSemaphore
    _idle: deque[_Pooled]
    _every: list[_Pooled]
    _shared: _Pooled | None
    _closed: bool

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def clients(self) -> int:
        """How many httpx clients (= connections at most) this transport has made."""
        return len(self._every)

    def close(self) -> None:
        """Close every client (idle or lent); later calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            every, self._every = self._every, []
            self._idle.clear()
        for pooled in every:
            pooled.client.close()

    def _new_client(self) -> _Pooled:
        options: dict[str, Any] = {}
        direct: httpx.BaseTransport | None = None
        if self._injected is not None:
            options["transport"] = self._injected
        else:
            with self._lock:
                if self._ssl_context is None:
                    # ~80 ms each: made once and shared, not once per client.
                    self._ssl_context = httpx.create_ssl_context()
            if self.direct:
                direct = self._make_http_transport(
                    verify=self._ssl_context, limits=self._one_connection
                )
                options["transport"] = direct
            else:
                options["verify"] = self._ssl_context
        client = self._make_http_client(
            timeout=self.timeout,
            limits=self._one_connection,
            headers=self._headers,
            # A redirect on a POST would silently turn it into a GET: never follow.
            follow_redirects=False,
            **options,
        )
        pooled = _Pooled(client, direct)
        with self._lock:
            if self._closed:
                client.close()
                raise RuntimeError("Cannot send a request, as the client has been closed.")
            self._every.append(pooled)
        return pooled

    def _lend(self) -> _Pooled:
        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        if self._shared is not None:
            return self._shared
        if not self._permits.acquire(timeout=self._pool_timeout_s):
            raise httpx.PoolTimeout(
                f"no free connection within {self._pool_timeout_s} s "
                f"({self.limits.max_connections} in use)"
            )
        try:
            return self._idle.pop()
        except IndexError:
            pass
        try:
            return self._new_client()
        except BaseException:
            self._permits.release()
            raise

    def _give_back(self, pooled: _Pooled) -> None:
        if pooled is self._shared:
            return
        if self._closed:
            pooled.client.close()
        else:
            self._idle.append(pooled)
        self._permits.release()


@dataclass(frozen=True, slots=True)
class _Pooled:
    """One pooled client and, on the direct path, the transport requests go to."""

    client: httpx.Client
    direct: httpx.BaseTransport | None
