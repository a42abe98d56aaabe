"""Requests sent straight to a pooled client's transport, built with little per call.

The direct half of :class:`worker.connectus.transport.Transport` (a mixin over
its attributes): what ``httpx.Client.request`` does for this client, without
the layers it never uses (cookie jar, auth flow, redirect loop, event hooks).
What can be built once is built once per client: the headers, as an
``httpx.Headers`` (httpx copies one as it is; a dict is normalised on every
request), and each URL string's parsed ``httpx.URL`` (httpx otherwise parses
the same few endpoint strings on every request). Split from
:mod:`worker.connectus.transport` (size guideline); knows nothing of Dramatiq.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Generator, Mapping
from typing import Any

import httpx


class DirectRequests:
    """Builds and sends one request on a pooled client's own transport."""

    _headers: dict[str, str]
    _bearer_headers: dict[str, str] | None
    _extensions: dict[str, Any]
    _direct_headers: httpx.Headers
    _direct_bearer: httpx.Headers | None
    _urls: dict[str, httpx.URL]

    def _prepare_direct(self) -> None:
        """Build the per-client parts (after ``_headers`` and ``_bearer_headers``)."""
        self._direct_headers = httpx.Headers(self._headers)
        bearer = self._bearer_headers
        self._direct_bearer = None if bearer is None else httpx.Headers(bearer)
        self._urls = {}

    def _direct(
        self,
        transport: httpx.BaseTransport,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        form: Mapping[str, Any] | None,
        bearer: bool,
    ) -> httpx.Response:
        """What ``Client.request`` does for this client, without its unused layers."""
        headers = self._direct_bearer if bearer and self._direct_bearer else self._direct_headers
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = httpx.URL(url)
            if len(self._urls) < URL_CACHE_SIZE:  # endpoints, plus ids in a few paths
                self._urls[url] = parsed
        request = httpx.Request(
            method,
            parsed,
            params=compact(params),
            json=compact(json_body),
            data=compact(form),
            headers=headers,
            extensions=self._extensions,
        )
        response = transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        response.request = request
        return response


#: Distinct URL strings whose parsed form is kept (per client).
URL_CACHE_SIZE = 256


def environment_proxies() -> bool:
    """Whether the environment names a proxy that ``httpx.Client`` would use."""
    return any(key in ("http", "https", "all") for key in urllib.request.getproxies())


class Bearer(httpx.Auth):
    """``Authorization: Bearer <token>`` (the QR API's form in the collection)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "Bearer('***')"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def compact(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``values`` without None entries, nested objects included."""
    if values is None:
        return None
    return {
        key: compact(value) if isinstance(value, Mapping) else value
        for key, value in values.items()
        if value is not None
    }
