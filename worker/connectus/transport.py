"""The client's one boundary: one ``httpx.Client`` and the single ``call``.

Every Connectus call of the three APIs goes through :meth:`Transport.call`,
which is the only place that turns httpx exceptions, HTTP statuses, error
statuses in bodies, unparseable, oversized and overdue answers into the error
tree (:mod:`worker.connectus.errors`), always ``raise ... from exc``. Which
class each maps to is decided by :mod:`worker.connectus.classify`.

Underneath is httpx's own transport (``httpx.HTTPTransport``, httpcore), built
by ``httpx.Client`` itself, so proxies named by the environment
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) and
``SSL_CERT_FILE``/``SSL_CERT_DIR`` are honoured (httpx's ``trust_env``).

Two limits httpx does not keep by itself, kept here while the answer streams:

- **size**: an answer larger than the call's cap (``max_response_bytes``, or
  ``max_listing_bytes`` for listings) is refused as soon as its
  ``Content-Length`` or the bytes read so far (decoded) pass the cap; it is
  never buffered whole.
- **deadline**: ``deadline_s`` bounds a whole request. Each httpx timeout
  (connect, write, read, pool) is at most the deadline, and the clock is read
  again after every chunk of the body, so a server trickling bytes cannot
  hold a request past it by more than one chunk's wait.

Secrets: the API key lives only in the default ``Authorization`` header and
in the scrub list used to redact error messages; no ``repr``/``str`` shows it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from worker.connectus import classify
from worker.connectus.errors import MalformedResponse, ResponseTimeout
from worker.connectus.parsing import ParseError

T = TypeVar("T")

# The error text kept in an exception message (chars): enough to read, not a dump.
_MAX_ERROR_TEXT = 200


class Transport:
    """One ``httpx.Client`` shared by every thread; URLs are absolute per call.

    Timeouts are seconds (s). ``pool_size`` bounds the connections open at
    once; ``pool_timeout_s`` bounds the wait for a free one (nothing is sent
    while waiting, so it maps to ``ConnectFailed``). ``deadline_s`` (s)
    bounds a whole request, ``max_response_bytes`` and ``max_listing_bytes``
    (bytes, decoded) an answer. ``transport`` replaces the network (tests
    pass ``httpx.MockTransport``); ``clock`` is monotonic seconds.
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
        deadline_s: float,
        max_response_bytes: int,
        max_listing_bytes: int,
        transport: httpx.BaseTransport | None = None,
        bearer_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_user or not api_key:
            raise ValueError("api_user and api_key must be non-empty")
        for name, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("write_timeout_s", write_timeout_s),
            ("pool_timeout_s", pool_timeout_s),
            ("deadline_s", deadline_s),
        ):
            # "not 0 < value < inf" also refuses NaN.
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0 seconds, got {value!r}")
        for name, size in (
            ("pool_size", pool_size),
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
        # No single wait may outlast the whole request's deadline.
        self.timeout = httpx.Timeout(
            connect=min(connect_timeout_s, deadline_s),
            read=min(read_timeout_s, deadline_s),
            write=min(write_timeout_s, deadline_s),
            pool=min(pool_timeout_s, deadline_s),
        )
        self.limits = httpx.Limits(
            max_connections=pool_size,
            max_keepalive_connections=pool_size,
            keepalive_expiry=keepalive_expiry_s,
        )
        self._client = httpx.Client(
            # Basic auth as a default header: the same bytes httpx.BasicAuth
            # would set, without running an auth flow on every request.
            headers={
                "User-Agent": user_agent,
                "Accept": "application/json",
                "Authorization": f"Basic {token}",
            },
            timeout=self.timeout,
            limits=self.limits,
            # A redirect on a POST would silently turn it into a GET: never follow.
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"Transport(timeout={self.timeout!r}, limits={self.limits!r})"

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    def close(self) -> None:
        """Close the pooled connections; later calls raise RuntimeError."""
        self._client.close()

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
        listing: bool = False,
    ) -> T:
        """Make one request and return ``parse(answer JSON)``.

        ``send=True`` marks a call that sends a message: a 2xx answer with a
        non-OK status (SMPP, platform, ``success: false``, a balance text) is
        then an error too. ``listing=True`` marks a call whose answer lists
        many records: its cap is ``max_listing_bytes``, not
        ``max_response_bytes``. ``None`` values are dropped from params, form
        and body, so optional fields are omitted rather than sent as null.
        Messages name the method and path only: a query string may carry
        phone numbers, which must not reach logs. ``bearer=True`` uses the
        bearer token instead of Basic auth, when one was configured.
        """
        where = f"{method} {urlsplit(url).path}"
        cap = self.max_listing_bytes if listing else self.max_response_bytes
        started = self._clock()
        try:
            request = self._client.build_request(
                method,
                url,
                params=compact(params),
                json=compact(json_body),
                data=compact(form),
                headers=self._bearer if bearer else None,
            )
            response = self._client.send(request, stream=True)
            try:
                content = self._read(response, where, cap, started)
            finally:
                response.close()
        except httpx.RequestError as exc:
            verdict = classify.for_exception(exc)
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
        except ParseError as exc:
            raise MalformedResponse(
                f"{where}: HTTP {status} answer unusable: {exc}",
                reason="malformed_response",
                status_code=status,
            ) from exc

    def _read(self, response: httpx.Response, where: str, cap: int, started: float) -> bytes | None:
        """The answer's body (decoded), or None if it is larger than ``cap`` bytes.

        Raises :class:`ResponseTimeout` (``deadline_exceeded``) once the
        request has taken longer than ``deadline_s``: the request went out, so
        a send may have been taken (ambiguous, like a read timeout).
        """
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            return None
        chunks: list[bytes] = []
        size = 0
        deadline = started + self.deadline_s
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > cap:
                return None
            if self._clock() > deadline:
                raise ResponseTimeout(
                    f"{where}: deadline_exceeded: no whole answer within {self.deadline_s} s "
                    f"(HTTP {response.status_code}, {size} bytes so far)",
                    reason="deadline_exceeded",
                    status_code=response.status_code,
                )
            chunks.append(chunk)
        # A whole answer is used even if its last chunk came late: it is the truth.
        return b"".join(chunks)

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
