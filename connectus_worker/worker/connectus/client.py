"""``ConnectusClient``: the Connectus API client, and its one boundary, ``call``.

``call`` alone turns httpx exceptions, HTTP statuses, error statuses in bodies,
and unparseable, oversized or overdue answers into the error tree
(:mod:`worker.connectus.errors`, the class chosen by :mod:`worker.connectus.classify`).
It keeps two limits httpx lacks: an answer's size (never buffered whole) and the
deadline of the whole request (:mod:`worker.connectus.deadline`).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from connectus_worker.worker.connectus import classify
from connectus_worker.worker.connectus.answers import describe
from connectus_worker.worker.connectus.deadline import Lane, Watchdog
from connectus_worker.worker.connectus.errors import MalformedResponse, ResponseTimeout
from connectus_worker.worker.connectus.qr import QrApi
from connectus_worker.worker.connectus.v1 import V1Api
from connectus_worker.worker.connectus.v3 import V3Api

T = TypeVar("T")

DEFAULT_USER_AGENT = "connectus-worker/0.1 (+httpx)"
# The defaults of CONNECTUS_REQUEST_DEADLINE_S (s), CONNECTUS_MAX_RESPONSE_BYTES
# and CONNECTUS_MAX_LISTING_BYTES (bytes): a send answer is a few hundred
# bytes (a 1,000-message v1 bulk's about 100 KB); a day's date_report can
# list tens of thousands of records.
DEFAULT_DEADLINE_S = 15.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_MAX_LISTING_BYTES = 64 * 1024 * 1024
# The error text kept in an exception message (chars): enough to read, not a dump.
_MAX_ERROR_TEXT = 200


class ConnectusClient:
    """The Connectus API client: ``.v3``, ``.v1`` and ``.qr`` share its connections.

    Create one per process and share it between threads: each calling thread
    gets its own ``httpx.Client`` with one keep-alive connection, so no thread
    waits on another's (one shared pool's lock cost a third of the worker's
    GIL time at 96 threads, ``docs/benchmarks.md``).

    Every setting is keyword-only. Timeouts are seconds (s):
    ``connect_timeout_s`` to open a connection, ``read_timeout_s`` between
    bytes of the answer, ``write_timeout_s`` between bytes of the request,
    and ``deadline_s`` for the whole request (no single timeout exceeds it).
    ``max_response_bytes`` caps an answer (bytes, decoded; send answers and
    single lookups), ``max_listing_bytes`` the answer of a listing
    (``listing=True`` calls: ``v3.sms_date_report``, ``v3.sms_delivery_info``,
    ``v1.check_delivery_status``, ``v3.list_clients``). Idle connections are
    dropped after ``keepalive_expiry_s`` (s), below common server idle
    timeouts, so a reused connection is rarely one the server already closed
    (which would make a send ambiguous). ``transport`` replaces the network
    (tests pass ``httpx.MockTransport``); without it, httpx builds its own and
    honours the environment's proxy and CA settings (``HTTPS_PROXY``,
    ``NO_PROXY``, ``SSL_CERT_FILE``...). ``qr_bearer_token``, when given, makes
    ``.qr`` send ``Authorization: Bearer <token>`` as the collection does;
    without it the QR API gets the same Basic auth as the others. ``clock``
    (monotonic seconds) keeps the deadline; ``on_client`` is called with each
    ``httpx.Client`` made (tracing instruments them).
    """

    def __init__(
        self,
        *,
        api_user: str,
        api_key: str,
        base_url: str,
        v1_base_url: str,
        qr_base_url: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        write_timeout_s: float = 5.0,
        keepalive_expiry_s: float = 4.0,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        qr_bearer_token: str | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_listing_bytes: int = DEFAULT_MAX_LISTING_BYTES,
        clock: Callable[[], float] = time.monotonic,
        on_client: Callable[[httpx.Client], None] | None = None,
    ) -> None:
        self.api_user = api_user
        self.base_url = _check_url("base_url", base_url)
        self.v1_base_url = _check_url("v1_base_url", v1_base_url)
        self.qr_base_url = _check_url("qr_base_url", qr_base_url)
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
        # Redact both the key and the Authorization value it produces. Secrets are
        # kept where no repr shows them: a closure and httpx.Headers (masked).
        token = base64.b64encode(f"{api_user}:{api_key}".encode()).decode("ascii")
        self._redact = _redactor(api_key, token, qr_bearer_token)
        bearer = {"Authorization": f"Bearer {qr_bearer_token}"}
        self._bearer = None if qr_bearer_token is None else httpx.Headers(bearer)
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
        basic = f"Basic {token}"
        self._headers = httpx.Headers(
            {"User-Agent": user_agent, "Accept": "application/json", "Authorization": basic}
        )
        self._injected = transport
        # Called with each new client (tracing instruments it; tracing). An
        # injected transport is shared by every client: its first client only.
        self._on_client = on_client
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        # ~80 ms each: made once and shared by every thread's client (httpx's
        # default: certifi, or SSL_CERT_FILE/SSL_CERT_DIR).
        self._verify: ssl.SSLContext | bool = (
            True if transport is not None else httpx.create_ssl_context()
        )
        self.closed = False
        # Cuts a request whose answer's head is still trickling in at its deadline.
        self._watchdog = Watchdog(clock, tick_s=min(0.1, deadline_s / 4))
        self.v3 = V3Api(self, self.base_url)
        self.v1 = V1Api(self, self.v1_base_url)
        self.qr = QrApi(self, self.qr_base_url)

    def __repr__(self) -> str:
        # The key is never shown; the account id (api_user) is not a secret.
        return (
            f"ConnectusClient(api_user={self.api_user!r}, api_key='***', "
            f"base_url={self.base_url!r}, v1_base_url={self.v1_base_url!r}, "
            f"qr_base_url={self.qr_base_url!r})"
        )

    def close(self) -> None:
        """Close every thread's client; later calls raise RuntimeError."""
        with self._lock:
            self.closed = True
            clients, self._clients = self._clients, []
        self._watchdog.stop()
        for client in clients:
            client.close()

    def __enter__(self) -> ConnectusClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _lane(self) -> Lane:
        """This thread's lane (its client), made on its first call."""
        lane: Lane | None = getattr(self._local, "lane", None)
        if lane is not None:
            return lane  # closed by close(): its client then refuses to send
        client = httpx.Client(
            headers=self._headers,
            timeout=self.timeout,
            limits=self._limits,
            # A redirect on a POST would silently turn it into a GET: never follow.
            follow_redirects=False,
            transport=self._injected,
            verify=self._verify,
        )
        lane = Lane(client)
        with self._lock:
            if self.closed:
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

        ``send=True``: a call that sends a message, whose 2xx answer with a
        non-OK status (SMPP, platform, ``success: false``, a balance text) is
        an error too. ``listing=True``: the answer is capped by
        ``max_listing_bytes``. ``bearer=True``: the bearer token, when one was
        configured, instead of Basic auth. ``None`` values are dropped from
        params and body (optional fields are omitted, not sent as null).
        Messages name the method and path only: a query string may carry
        phone numbers, which must not reach logs.
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
        failed = classify.for_http(status, body, response.headers.get("Retry-After"))
        if failed is not None:  # any non-2xx status
            # The cause keeps the response for debugging; its text names no URL,
            # because a query string may carry numbers.
            cause = httpx.HTTPStatusError(
                f"HTTP {status}", request=response.request, response=response
            )
            raise failed.error(
                self._message(where, f"HTTP {status}", body),
                reason=failed.reason,
                status_code=status,
                retry_after_s=failed.retry_after_s,
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

        Past ``deadline``: :class:`ResponseTimeout` (ambiguous: the request went out).
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
        text = (body.get("error") or body.get("detail")) if isinstance(body, Mapping) else None
        if text is None:
            return f"{where}: {what}"
        if not isinstance(text, str):
            text = json.dumps(text, ensure_ascii=False)
        return f"{where}: {what}: {self._redact(text)[:_MAX_ERROR_TEXT]}"


def compact(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``values`` without None entries, nested objects included."""
    if values is None:
        return None
    return {
        key: compact(value) if isinstance(value, Mapping) else value
        for key, value in values.items()
        if value is not None
    }


def _redactor(*secrets: str | None) -> Callable[[str], str]:
    """A function replacing each secret in a text with ``***``."""

    def redact(text: str) -> str:
        for secret in filter(None, secrets):
            text = text.replace(secret, "***")
        return text

    return redact


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or fragment")
    return value.rstrip("/")
