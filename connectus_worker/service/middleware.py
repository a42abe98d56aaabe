"""Per-request context: correlation id, one access log line, metrics, last-resort 500.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so request bodies keep streaming
through it (the size limit relies on it). A body must arrive within ``body_timeout_s``
(else 408: a trickling client would hold a worker slot for ever); a client that went
away mid-body is logged and counted as 499 (nginx's "client closed request"), not 500.
"""

from __future__ import annotations

import re
import time
import uuid

import anyio
import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectus_worker.service.metrics import Metrics
from connectus_worker.service.problems import problem_response

log = structlog.get_logger("service.http")

#: An accepted X-Request-ID: short and safe to log and to put in a header.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

#: Logged and counted for a request whose client went away before the answer.
CLIENT_CLOSED = 499


class BodyTimeout(Exception):
    """The request body did not arrive in time (answered 408)."""


class RequestContextMiddleware:
    """Binds ``request_id`` for logs, echoes it as ``X-Request-ID``, counts and times."""

    def __init__(self, app: ASGIApp, metrics: Metrics, body_timeout_s: float) -> None:
        self.app = app
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id")
        # The client's if well-formed, else a new one (32 hex digits).
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        begin = time.perf_counter()
        deadline = anyio.current_time() + self.body_timeout_s
        body_done = False

        async def receive_in_time() -> Message:
            # One deadline for all the body's chunks, however it is trickled; after
            # the body (a handler waiting for a disconnect), receive is unbounded.
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                with anyio.fail_after(max(deadline - anyio.current_time(), 0)):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive_in_time, send_with_id)
            except BodyTimeout:
                log.info("request body timed out", path=scope.get("path"),
                         timeout_s=self.body_timeout_s)  # fmt: skip
                if not started:
                    response = problem_response(
                        408,
                        f"the request body did not arrive within {self.body_timeout_s:g} s",
                        headers={"Connection": "close"},
                    )
                    await response(scope, receive, send_with_id)
            except ClientDisconnect:
                # Nobody to answer: not a server error, and no traceback.
                status = CLIENT_CLOSED
                log.info("client disconnected before the answer", path=scope.get("path"))
            except Exception:
                # Last resort: a bug must still answer problem+json, and be logged.
                log.exception("unhandled error", path=scope.get("path"))
                if not started:
                    response = problem_response(500, "internal error; see the service logs")
                    await response(scope, receive, send_with_id)
            finally:
                elapsed_s = time.perf_counter() - begin
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.metrics.http_requests.labels(
                    route=route, method=scope["method"], status=str(status)
                ).inc()
                self.metrics.http_duration.labels(route=route).observe(elapsed_s)
                # Path without the query string: a webhook token travels there.
                log.info(
                    "http request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed_s * 1000, 1),
                )
