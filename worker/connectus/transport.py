"""The client's one boundary: pooled ``httpx`` clients and the single ``call``.

Every Connectus call of the three APIs goes through :meth:`Transport.call`,
which is the only place that turns httpx exceptions, HTTP statuses, error
statuses in bodies and unparseable answers into the error tree
(:mod:`worker.connectus.errors`), always ``raise ... from exc``. Which class
each maps to is decided by :mod:`worker.connectus.classify`.

Secrets: the API key lives only inside ``httpx.BasicAuth`` and in the scrub
list used to redact error messages; no ``repr``/``str`` shows it.

The pool the clients are lent from is :mod:`worker.connectus.pool`; the
requests sent straight to a pooled client's transport are built by
:mod:`worker.connectus.requests_direct`.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from worker.connectus import classify
from worker.connectus.errors import MalformedResponse
from worker.connectus.parsing import ParseError
from worker.connectus.pool import ClientPool
from worker.connectus.requests_direct import Bearer, DirectRequests, compact, environment_proxies

T = TypeVar("T")

# The error text kept in an exception message (chars): enough to read, not a dump.
_MAX_ERROR_TEXT = 200


class Transport(ClientPool, DirectRequests):
    """The pooled HTTP clients of all three APIs; URLs are absolute per call.

    Timeouts are seconds (s). ``pool_size`` bounds the connections open at
    once; ``pool_timeout_s`` bounds the wait for a free one (nothing is sent
    while waiting, so it maps to ``ConnectFailed``). ``transport`` replaces
    the network (tests pass ``httpx.MockTransport``); ``pool_size`` then has
    no effect and one client over that transport serves every thread.

    How the pool lends its clients, and why one connection each:
    :class:`worker.connectus.pool.ClientPool`.

    Each pooled client is built on an ``httpx.HTTPTransport`` of its own, and
    a request goes straight to that transport (the same request bytes,
    timeouts and httpx exceptions), skipping the client's per-request layers
    that this client never uses: cookie jar, auth flow, redirect loop, event
    hooks (about 0.2 ms of CPU a request here). When the environment names
    a proxy (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``), clients are built
    as before and requests go through ``Client.request``, which honours it.

    ``make_http_transport`` and ``make_http_client`` build those per-client
    objects (default: ``httpx.HTTPTransport`` and ``httpx.Client``; tests pass
    fakes). They are called once per pooled client, never per request.
    """

    def __init__(
        self,
        *,
        api_user: str,
        api_key: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        write_timeout_s: float,
        pool_timeout_s: float,
        pool_size: int,
        keepalive_expiry_s: float,
        user_agent: str,
        transport: httpx.BaseTransport | None = None,
        bearer_token: str | None = None,
        make_http_transport: Callable[..., httpx.BaseTransport] = httpx.HTTPTransport,
        make_http_client: Callable[..., httpx.Client] = httpx.Client,
    ) -> None:
        if not api_user or not api_key:
            raise ValueError("api_user and api_key must be non-empty")
        for name, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("write_timeout_s", write_timeout_s),
            ("pool_timeout_s", pool_timeout_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size!r}")
        # Redact both the key and the Authorization value it produces.
        token = base64.b64encode(f"{api_user}:{api_key}".encode()).decode("ascii")
        self._secrets = tuple(s for s in (api_key, token, bearer_token) if s)
        self._bearer = None if bearer_token is None else Bearer(bearer_token)
        self.timeout = httpx.Timeout(
            connect=connect_timeout_s,
            read=read_timeout_s,
            write=write_timeout_s,
            pool=pool_timeout_s,
        )
        self.limits = httpx.Limits(
            max_connections=pool_size,
            max_keepalive_connections=pool_size,
            keepalive_expiry=keepalive_expiry_s,
        )
        self._pool_timeout_s = pool_timeout_s
        self._injected = transport
        self._make_http_transport = make_http_transport
        self._make_http_client = make_http_client
        # Basic auth as a default header: the same bytes httpx.BasicAuth would
        # set, without running an auth flow on every request.
        self._headers = {
            "User-Agent": user_agent,
            "Accept": "application/json",
            "Authorization": f"Basic {token}",
        }
        self._bearer_headers = (
            None
            if bearer_token is None
            else {**self._headers, "Authorization": f"Bearer {bearer_token}"}
        )
        self._extensions = {"timeout": self.timeout.as_dict()}
        self._prepare_direct()
        self._one_connection = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=keepalive_expiry_s
        )
        # Straight to each client's transport, unless a proxy must be honoured.
        self.direct = transport is None and not environment_proxies()
        self._ssl_context = None  # made once, on the first real client
        self._lock = threading.Lock()
        self._permits = threading.BoundedSemaphore(pool_size)
        self._idle = deque()
        self._every = []
        self._closed = False
        # With an injected transport: one client over it, shared by every thread.
        self._shared = None if transport is None else self._new_client()

    def __repr__(self) -> str:
        return f"Transport(timeout={self.timeout!r}, limits={self.limits!r})"

    def call(
        self,
        method: str,
        url: str,
        parse: Callable[[Any], T],
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
        send: bool = False,
        bearer: bool = False,
    ) -> T:
        """Make one request and return ``parse(answer JSON)``.

        ``send=True`` marks a call that sends a message: a 2xx answer with a
        non-OK status (SMPP, platform, ``success: false``, a balance text) is
        then an error too. ``None`` values are dropped from params, form and
        body, so optional fields are omitted rather than sent as null/empty.
        Messages name the method and path only: a query string may carry
        phone numbers, which must not reach logs. ``bearer=True`` uses
        the bearer token instead of Basic auth, when one was configured.
        """
        where = f"{method} {urlsplit(url).path}"
        try:
            pooled = self._lend()
            try:
                if pooled.direct is None:
                    response = pooled.client.request(
                        method,
                        url,
                        params=compact(params),
                        json=compact(json_body),
                        data=compact(form),
                        auth=self._bearer if bearer and self._bearer else httpx.USE_CLIENT_DEFAULT,
                    )
                else:
                    response = self._direct(pooled.direct, method, url, params, json_body, form,
                                            bearer)  # fmt: skip
            finally:
                self._give_back(pooled)
        except httpx.RequestError as exc:
            verdict = classify.for_exception(exc)
            raise verdict.error(
                f"{where}: {verdict.reason} ({type(exc).__name__})", reason=verdict.reason
            ) from exc
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            if response.is_success:
                raise MalformedResponse(
                    f"{where}: HTTP {status} answer is not JSON "
                    f"({response.headers.get('content-type', 'no content-type')}, "
                    f"{len(response.content)} bytes)",
                    reason="malformed_response",
                    status_code=status,
                ) from exc
            body = None
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
        except ParseError as exc:
            raise MalformedResponse(
                f"{where}: HTTP {status} answer unusable: {exc}",
                reason="malformed_response",
                status_code=status,
            ) from exc

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
