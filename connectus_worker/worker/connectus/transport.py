"""The client's one boundary: ``httpx.Client`` objects and the single ``call``.

:meth:`Transport.call` is the only place that turns httpx exceptions, HTTP
statuses, error statuses in bodies, unparseable, oversized and overdue answers
into the error tree (:mod:`worker.connectus.errors`, chosen by
:mod:`worker.connectus.classify`), always ``raise ... from exc``.

Underneath is httpx's own transport, built by each ``httpx.Client``, so proxies
and CA files named by the environment are honoured (httpx's ``trust_env``).
Two limits httpx lacks are kept while the answer streams: the **size** cap (a
declared ``Content-Length`` or the bytes read so far, decoded; never buffered
whole) and the **deadline** of a whole request (no httpx timeout exceeds it;
the clock is read after every chunk; :mod:`worker.connectus.deadline` cuts a
request whose answer's head trickles in).

Secrets: the API key lives only in the default ``Authorization`` header and
in the scrub list used to redact error messages; no ``repr``/``str`` shows it.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from connectus_worker.worker.connectus import classify
from connectus_worker.worker.connectus.answers import describe
from connectus_worker.worker.connectus.deadline import Lane, Watchdog
from connectus_worker.worker.connectus.errors import MalformedResponse, ResponseTimeout

T = TypeVar("T")

# The error text kept in an exception message (chars): enough to read, not a dump.
_MAX_ERROR_TEXT = 200


class Transport:
    """One ``httpx.Client`` per calling thread; URLs are absolute per call.

    Why one per thread: a thread makes one request at a time, so each client
    needs one connection, and no thread waits on another's. One client shared
    by every thread pools their connections behind one lock, and httpcore
    scans every pooled connection under it at each request's start and end:
    at 96 threads that scan was a third of the worker's GIL time
    (``docs/benchmarks.md``, issue 19). The clients share one SSL context.
    The settings are :class:`~worker.connectus.client.ConnectusClient`'s.
    """

    def __init__(
        self,
        *,
        api_user: str,
        api_key: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        write_timeout_s: float,
        keepalive_expiry_s: float,
        user_agent: str,
        deadline_s: float,
        max_response_bytes: int,
        max_listing_bytes: int,
        transport: httpx.BaseTransport | None = None,
        bearer_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_client: Callable[[httpx.Client], None] | None = None,
    ) -> None:
        if not api_user or not api_key:
            raise ValueError("api_user and api_key must be non-empty")
        for name, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("write_timeout_s", write_timeout_s),
            ("deadline_s", deadline_s),
        ):
            # "not 0 < value < inf" also refuses NaN.
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0 seconds, got {value!r}")
        for name, size in (
            ("max_response_bytes", max_response_bytes),
            ("max_listing_bytes", max_listing_bytes),
        ):
            if size < 1:
                raise ValueError(f"{name} must be >= 1, got {size!r}")
        # Redact both the key and the Authorization value it produces.
        token = base64.b64encode(f"{api_user}:{api_key}".encode()).decode("ascii")
        self._secrets = tuple(s for s in (api_key, token, bearer_token) if s)
        self._bearer = None if bearer_token is None else {"Authorization": f"Bearer {bearer_token}"}
        self.deadline_s = deadline_s
        self.max_response_bytes = max_response_bytes
        self.max_listing_bytes = max_listing_bytes
        self._clock = clock
        # No single wait may outlast the whole request's deadline. The pool
        # wait is never used (one request at a time per client).
        self.timeout = httpx.Timeout(
            connect=min(connect_timeout_s, deadline_s),
            read=min(read_timeout_s, deadline_s),
            write=min(write_timeout_s, deadline_s),
            pool=min(connect_timeout_s, deadline_s),
        )
        self._limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=keepalive_expiry_s
        )
        # Basic auth as a default header: the same bytes httpx.BasicAuth
        # would set, without running an auth flow on every request.
        self._headers = {
            "User-Agent": user_agent,
            "Accept": "application/json",
            "Authorization": f"Basic {token}",
        }
        self._injected = transport
        # Called with each new client (tracing instruments it; tracing). An
        # injected transport is shared by every client: its first client only.
        self._on_client = on_client
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._ssl_context: ssl.SSLContext | None = None
        self._closed = False
        # Cuts a request whose answer's head is still trickling in at its deadline.
        self._watchdog = Watchdog(clock, tick_s=min(0.1, deadline_s / 4))

    def __repr__(self) -> str:
        return f"Transport(timeout={self.timeout!r}, clients={len(self._clients)})"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every thread's client; later calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            clients, self._clients = self._clients, []
        self._watchdog.stop()
        for client in clients:
            client.close()

    def _lane(self) -> Lane:
        """This thread's lane (its client), made on its first call."""
        lane: Lane | None = getattr(self._local, "lane", None)
        if lane is not None:
            return lane  # closed by close(): its client then refuses to send
        options: dict[str, Any] = {}
        if self._injected is None:
            with self._lock:
                if self._ssl_context is None:
                    # ~80 ms each: made once and shared, not once per client.
                    # httpx's own default (certifi, or SSL_CERT_FILE/SSL_CERT_DIR).
                    self._ssl_context = httpx.create_ssl_context()
            options["verify"] = self._ssl_context
        client = httpx.Client(
            headers=self._headers,
            timeout=self.timeout,
            limits=self._limits,
            # A redirect on a POST would silently turn it into a GET: never follow.
            follow_redirects=False,
            transport=self._injected,
            **options,
        )
        lane = Lane(client)
        with self._lock:
            if self._closed:
                client.close()
                raise RuntimeError("Cannot send a request, as the client has been closed.")
            if self._on_client is not None and (self._injected is None or not self._clients):
                self._on_client(client)
            self._clients.append(client)
        self._watchdog.add(lane)
        self._local.lane = lane
        return lane

    def call(
        self,
        method: str,
        url: str,
        parse: Callable[[Any], T],
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        send: bool = False,
        bearer: bool = False,
        listing: bool = False,
    ) -> T:
        """Make one request and return ``parse(answer JSON)``.

        ``send=True`` marks a call that sends a message: a 2xx answer with a
        non-OK status (SMPP, platform, ``success: false``, a balance text) is
        then an error too. ``listing=True`` marks a call whose answer lists
        many records: its cap is ``max_listing_bytes``, not
        ``max_response_bytes``. ``None`` values are dropped from params and
        body, so optional fields are omitted rather than sent as null.
        Messages name the method and path only: a query string may carry
        phone numbers, which must not reach logs. ``bearer=True`` uses the
        bearer token instead of Basic auth, when one was configured.
        """
        where = f"{method} {urlsplit(url).path}"
        cap = self.max_listing_bytes if listing else self.max_response_bytes
        deadline = self._clock() + self.deadline_s
        try:
            lane = self._lane()
            request = lane.client.build_request(
                method,
                url,
                params=compact(params),
                json=compact(json_body),
                headers=self._bearer if bearer else None,
                extensions={"trace": lane.trace},
            )
            lane.start(deadline)
            try:
                response = lane.client.send(request, stream=True)
                try:
                    content = self._read(response, where, cap, deadline)
                finally:
                    response.close()
            finally:
                lane.finish()
        except httpx.RequestError as exc:
            verdict = classify.for_exception(exc)
            if verdict.error.outcome == "ambiguous" and self._clock() > deadline:
                # Cut by the watchdog (or a wait clamped to the deadline) after
                # the request went out: as ambiguous as a read timeout.
                raise self._overdue(where, None, None) from exc
            raise verdict.error(
                f"{where}: {verdict.reason} ({type(exc).__name__})", reason=verdict.reason
            ) from exc
        status = response.status_code
        body: Any = None
        if content is not None:
            try:
                body = json.loads(content)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                if response.is_success:
                    raise MalformedResponse(
                        f"{where}: HTTP {status} answer is not JSON "
                        f"({response.headers.get('content-type', 'no content-type')}, "
                        f"{len(content)} bytes)",
                        reason="malformed_response",
                        status_code=status,
                    ) from exc
        if not response.is_success:
            verdict_or_none = classify.for_http(status, body, response.headers.get("Retry-After"))
            if verdict_or_none is not None:  # always, for a non-2xx status
                # The cause keeps the response for debugging; its text names no URL,
                # because a query string may carry numbers.
                cause = httpx.HTTPStatusError(
                    f"HTTP {status}", request=response.request, response=response
                )
                raise verdict_or_none.error(
                    self._message(where, f"HTTP {status}", body),
                    reason=verdict_or_none.reason,
                    status_code=status,
                    retry_after_s=verdict_or_none.retry_after_s,
                ) from cause
        if content is None:
            raise MalformedResponse(
                f"{where}: HTTP {status} answer is larger than {cap} bytes: not read",
                reason="response_too_large",
                status_code=status,
            )
        if send:
            refused = classify.for_send_body(body)
            if refused is not None:
                raise refused.error(
                    self._message(where, f"HTTP {status} {refused.reason}", body),
                    reason=refused.reason,
                    status_code=status,
                )
        try:
            return parse(body)
        except ValidationError as exc:
            raise MalformedResponse(
                f"{where}: HTTP {status} answer unusable: {describe(exc)}",
                reason="malformed_response",
                status_code=status,
            ) from exc

    def _read(
        self, response: httpx.Response, where: str, cap: int, deadline: float
    ) -> bytes | None:
        """The answer's body (decoded), or None if it is larger than ``cap`` bytes.

        Raises :class:`ResponseTimeout` (``deadline_exceeded``) once the clock
        passes ``deadline``: the request went out, so a send may have been
        taken (ambiguous, like a read timeout).
        """
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            return None
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > cap:
                return None
            if self._clock() > deadline:
                raise self._overdue(where, response.status_code, size)
            chunks.append(chunk)
        # A whole answer is used even if its last chunk came late: it is the truth.
        return b"".join(chunks)

    def _overdue(self, where: str, status: int | None, size: int | None) -> ResponseTimeout:
        so_far = "" if status is None else f" (HTTP {status}, {size} bytes so far)"
        return ResponseTimeout(
            f"{where}: deadline_exceeded: no whole answer within {self.deadline_s} s{so_far}",
            reason="deadline_exceeded",
            status_code=status,
        )

    def _message(self, where: str, what: str, body: Any) -> str:
        """``where: what: <error text>``, the text cut short and secrets redacted."""
        text = None
        if isinstance(body, Mapping):
            text = body.get("error") or body.get("detail")
        if text is None:
            return f"{where}: {what}"
        if not isinstance(text, str):
            text = json.dumps(text, ensure_ascii=False)
        return f"{where}: {what}: {self._redact(text)[:_MAX_ERROR_TEXT]}"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def compact(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``values`` without None entries, nested objects included."""
    if values is None:
        return None
    return {
        key: compact(value) if isinstance(value, Mapping) else value
        for key, value in values.items()
        if value is not None
    }
