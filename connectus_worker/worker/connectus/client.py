"""``ConnectusClient``: one per process, shared by its threads; three sub-APIs.

::

    with ConnectusClient(api_user=..., api_key=..., base_url=..., v1_base_url=...,
                         qr_base_url=..., connect_timeout_s=3, read_timeout_s=10) as c:
        c.v3.send_sms(dst_number="56987688060", sms_content="hola").provider_id

Every failure is a :class:`~worker.connectus.errors.ConnectusError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from connectus_worker.worker.connectus.qr import QrApi
from connectus_worker.worker.connectus.transport import Transport
from connectus_worker.worker.connectus.v1 import V1Api
from connectus_worker.worker.connectus.v3 import V3Api

DEFAULT_USER_AGENT = "connectus-worker/0.1 (+httpx)"
# The defaults of CONNECTUS_REQUEST_DEADLINE_S (s), CONNECTUS_MAX_RESPONSE_BYTES
# and CONNECTUS_MAX_LISTING_BYTES (bytes): a send answer is a few hundred
# bytes (a 1,000-message v1 bulk's about 100 KB); a day's date_report can
# list tens of thousands of records.
DEFAULT_DEADLINE_S = 15.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_MAX_LISTING_BYTES = 64 * 1024 * 1024


class ConnectusClient:
    """The Connectus API client: ``.v3``, ``.v1`` and ``.qr`` share its connections.

    Every setting is keyword-only. Timeouts are seconds (s):
    ``connect_timeout_s`` to open a connection, ``read_timeout_s`` between
    bytes of the answer, ``write_timeout_s`` between bytes of the request,
    and ``deadline_s`` for the whole request (no single timeout exceeds it;
    it is checked after every chunk of the answer, and a watchdog shuts the
    connection down at it while the answer's head is awaited, so a server
    trickling bytes cannot hold a request past it).
    ``max_response_bytes`` caps an answer (bytes, decoded; send answers and
    single lookups), ``max_listing_bytes`` the answer of a listing
    (``v3.sms_date_report``, ``v3.sms_delivery_info``,
    ``v1.check_delivery_status``, ``v3.list_clients``); a larger answer is
    refused while it streams, never buffered whole. Each calling thread
    gets its own ``httpx.Client`` with one keep-alive connection. Idle
    connections are dropped after ``keepalive_expiry_s`` (s), below common
    server idle timeouts, so a reused connection is rarely one the server
    already closed (which would make a send ambiguous). ``transport``
    replaces the network (tests pass ``httpx.MockTransport``); without it,
    httpx builds its own ``httpx.HTTPTransport`` and honours a proxy named
    by the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``). ``qr_bearer_token``, when given, makes ``.qr`` send
    ``Authorization: Bearer <token>`` as the collection does; without it the
    QR API gets the same Basic auth as the others. ``clock`` (monotonic
    seconds) is what the deadline is kept by; tests pass a fake one.
    ``on_client`` is called with each ``httpx.Client`` made (the worker's
    tracing instruments them: :func:`tracing.instrument_http_client`).
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
        self._transport = Transport(
            api_user=api_user,
            api_key=api_key,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            write_timeout_s=write_timeout_s,
            keepalive_expiry_s=keepalive_expiry_s,
            user_agent=user_agent,
            transport=transport,
            bearer_token=qr_bearer_token,
            deadline_s=deadline_s,
            max_response_bytes=max_response_bytes,
            max_listing_bytes=max_listing_bytes,
            clock=clock,
            on_client=on_client,
        )
        self.v3 = V3Api(self._transport, self.base_url)
        self.v1 = V1Api(self._transport, self.v1_base_url)
        self.qr = QrApi(self._transport, self.qr_base_url)

    @property
    def timeout(self) -> httpx.Timeout:
        """The configured timeouts (s), as httpx applies them to every request."""
        return self._transport.timeout

    @property
    def closed(self) -> bool:
        return self._transport.closed

    def close(self) -> None:
        """Close every connection; the client can't be used afterwards."""
        self._transport.close()

    def __enter__(self) -> ConnectusClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # The key is never shown; the account id (api_user) is not a secret.
        return (
            f"ConnectusClient(api_user={self.api_user!r}, api_key='***', "
            f"base_url={self.base_url!r}, v1_base_url={self.v1_base_url!r}, "
            f"qr_base_url={self.qr_base_url!r})"
        )

    __str__ = __repr__


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or fragment")
    return value.rstrip("/")
