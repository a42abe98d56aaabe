"""What every route shares: the runtime object, auth, parameters, faults, stats.

Handlers are plain ``async def handler(request) -> Response`` functions that
raise :class:`ApiError` for error answers; :func:`endpoint` wraps each one with
Basic auth, fault injection (send calls, or all calls when ``applies_to=all``)
and per-route request counting. No middleware: one wrapper call per request
keeps the hot path short.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import faults as f
from sandbox.config import SandboxConfig
from sandbox.errors import ApiError, bad_request
from sandbox.limits import ProviderLimit, product_of, retry_after_s
from sandbox.state import SandboxState
from sandbox.webhooks import WebhookDispatcher

Handler = Callable[[Request], Awaitable[Response]]

AUTH_BASIC = "basic"
AUTH_BASIC_OR_BEARER = "basic_or_bearer"  # the QR API: the collection uses a bearer token
AUTH_NONE = "none"


class Stats:
    """Requests served, by route name and answer status (``dropped`` for aborts), and
    the send calls being answered now (a test waits on those to act mid-send)."""

    __slots__ = ("by_route", "sends_in_flight")

    def __init__(self) -> None:
        self.by_route: dict[str, dict[str, int]] = {}
        self.sends_in_flight = 0

    def count(self, route: str, status: str) -> None:
        per = self.by_route.get(route)
        if per is None:
            per = self.by_route[route] = {}
        per[status] = per.get(status, 0) + 1


class Runtime:
    """The objects a request needs, created once by ``build_app``."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state
        self.faults = f.Faults(config.faults, ProviderLimit(state.clock))
        self.stats = Stats()
        self.webhooks = WebhookDispatcher(config)
        state.notify = self.webhooks.enqueue
        token = base64.b64encode(f"{config.api_user}:{config.api_key}".encode()).decode()
        self._basic = "Basic " + token
        self._bearer = "Bearer " + config.api_key

    def check_auth(self, request: Request, mode: str) -> None:
        header = request.headers.get("authorization")
        if header == self._basic or (mode == AUTH_BASIC_OR_BEARER and header == self._bearer):
            return
        if not header:
            raise ApiError(401, "You must submit an API key")
        if not self._slow_auth(header, mode):
            raise ApiError(401, "Invalid API key")

    def _slow_auth(self, header: str, mode: str) -> bool:
        """Case-insensitive scheme and any valid base64 spelling, in constant time."""
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and mode == AUTH_BASIC_OR_BEARER:
            return hmac.compare_digest(value.encode(), self.config.api_key.encode())
        if scheme.lower() != "basic":
            return False
        try:
            user, _, key = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        ok_user = hmac.compare_digest(user.encode(), self.config.api_user.encode())
        ok_key = hmac.compare_digest(key.encode(), self.config.api_key.encode())
        return ok_user and ok_key


def json_ok(body: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code)


async def params(request: Request) -> dict[str, Any]:
    """Query parameters merged with a JSON or urlencoded body (the body wins).

    The documents send v1 parameters in the query string and QR lookups as JSON
    bodies on GET, so every route accepts all of them.
    """
    out: dict[str, Any] = dict(request.query_params) if request.scope["query_string"] else {}
    raw = await request.body()
    if not raw.strip():
        return out
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        out.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return out
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("body", "Body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise bad_request("body", "Body must be a JSON object")
    out.update(data)
    return out


def endpoint(
    rt: Runtime,
    method: str | list[str],
    path: str,
    handler: Handler,
    *,
    send: bool = False,
    smpp: bool = False,
    auth: str = AUTH_BASIC,
) -> Route:
    """A route with auth, faults (``send=True`` calls) and stats around ``handler``.

    ``smpp=True`` marks calls whose answer carries an SMPP status, where a
    throttle fault is ``{"status": "ESME_RTHROTTLED"}``; elsewhere it is a 429.
    """
    methods = [method] if isinstance(method, str) else method
    name = f"{methods[0]} {path}"
    faults = rt.faults
    count = rt.stats.count
    faultable = auth != AUTH_NONE  # the admin API is never faulted
    api = api_of(path)
    limit, product, account = faults.limit, product_of(path), rt.config.api_user

    async def wrapped(request: Request) -> Response:
        if send:
            rt.stats.sends_in_flight += 1
        try:
            return await answer(request)
        finally:
            if send:
                rt.stats.sends_in_flight -= 1

    async def answer(request: Request) -> Response:
        try:
            if auth != AUTH_NONE:
                rt.check_auth(request, auth)
            fault = f.NONE
            faulted = faultable and (send or faults.on_lookups) and api in faults.apis
            if faulted:
                await faults.delay()
            # The provider's limit first, on every API whichever are faulted: a
            # send past it is refused whatever the dice say, and one within it
            # can still meet a random fault.
            wait_s = limit.take(account, product) if faultable and send and limit.on else 0.0
            if wait_s > 0:
                count(name, "limited")
                if smpp:
                    return json_ok({"status": "ESME_RTHROTTLED"})
                return JSONResponse(
                    {"error": "Too many requests"},
                    status_code=429,
                    headers={"Retry-After": str(retry_after_s(wait_s))},
                )
            if faulted:
                fault = faults.draw()
            if fault == f.REFUSED and not smpp:
                fault = f.NONE  # an SMPP refusal exists only on SMS sends
            if fault == f.THROTTLED and smpp:
                response: Response = json_ok({"status": "ESME_RTHROTTLED"})
            elif fault == f.REFUSED:
                response = json_ok({"status": faults.config.refusal_status})
            elif fault in (f.TOO_MANY, f.THROTTLED):
                response = JSONResponse(
                    {"error": "Too many requests"},
                    status_code=429,
                    headers={"Retry-After": str(faults.config.retry_after_s)},
                )
            elif fault == f.SERVER_ERROR:
                code = faults.server_error_code()
                if faults.charge_before_error(code):
                    with contextlib.suppress(ApiError):
                        await handler(request)
                response = JSONResponse({"error": f"Sandbox fault: HTTP {code}"}, code)
            else:
                response = await handler(request)
                if fault == f.DROP and response.status_code == 200:
                    count(name, "dropped")
                    return f.DroppedResponse()
        except ApiError as exc:
            response = JSONResponse(exc.body(), status_code=exc.status_code)
        count(name, str(response.status_code))
        return response

    wrapped.__name__ = handler.__name__
    return Route(path, wrapped, methods=methods, name=name)


def api_of(path: str) -> str:
    """Which API (Connectus host) a path belongs to: ``v3``, ``v1`` or ``qr`` (the root)."""
    if path.startswith("/api_v3"):
        return "v3"
    return "v1" if path.startswith("/api_v1") else "qr"


def require(data: dict[str, Any], field: str) -> Any:
    """The non-empty value of ``field`` or a 400 naming it."""
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise bad_request(field, f"Missing parameter: {field}")
    return value


def require_str(data: dict[str, Any], field: str) -> str:
    value = require(data, field)
    if isinstance(value, (dict, list, bool)):
        raise bad_request(field, f"Parameter {field} must be a string")
    return str(value)


def require_int(data: dict[str, Any], field: str, *, minimum: int | None = None) -> int:
    value = require(data, field)
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(field, f"Parameter {field} must be an integer") from exc
    if isinstance(value, bool) or (minimum is not None and number < minimum):
        raise bad_request(field, f"Parameter {field} must be an integer >= {minimum}")
    return number
