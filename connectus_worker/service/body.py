"""Request bodies: read with a size limit, parse as JSON without surprises.

A client announcing or sending more than ``limit`` bytes gets a 413 as soon as the
limit is crossed; the rest is never buffered. A body that stops arriving is cut off by
:class:`service.middleware.RequestContextMiddleware` (408).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from connectus_worker.domain.validation import FieldError
from connectus_worker.service.problems import ProblemError


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; 400 for anything that is not one.

    Rejects what would fail later in unexpected places: lone surrogates
    (``"\\ud800"`` decodes to a str that cannot be encoded to UTF-8 for
    Redis), integers beyond Python's digit limit and nesting deep enough to
    exhaust the recursion limit.
    """
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
        # Round-trip to UTF-8: raises on lone surrogates anywhere in the document.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError as exc:
        raise ProblemError(400, "the request body is not valid UTF-8 JSON") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digit limit, nesting
        raise ProblemError(400, "the request body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ProblemError(400, "the request body must be a JSON object")
    where = _non_finite(value, "")
    if where is not None:
        # 1e999 is valid JSON that Python reads as inf: no field means it, and the
        # idempotency fingerprint cannot encode it.
        raise ProblemError(
            422,
            f"{where}: must be a finite number",
            errors=[FieldError(where, "must be a finite number (it overflows to infinity)")],
        )
    return value


def _non_finite(value: Any, path: str) -> str | None:
    """The path (``a.b[2]``) of the first float that is not finite, or None (iterative:
    a document nested just short of the parser's limit must not exhaust the stack)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where or "body"
        if isinstance(item, dict):
            stack.extend(
                (child, f"{where}.{key}" if where else str(key))
                for key, child in reversed(list(item.items()))
            )
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are Python extensions, not JSON (RFC 8259).
    raise ValueError(f"{name} is not JSON")


def json_body(
    limit: int, *, declared: bool = True
) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A dependency: the body as a JSON object (:func:`parse_json_object`), at most
    ``limit`` bytes (413); ``declared``: 415 unless its Content-Type says JSON."""

    async def read(request: Request) -> dict[str, Any]:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if declared and media_type != "application/json" and not media_type.endswith("+json"):
            raise ProblemError(
                415, "the request body must be JSON (Content-Type: application/json)"
            )
        too_large = ProblemError(413, f"the request body exceeds the limit of {limit} bytes")
        declared_size = request.headers.get("content-length", "")
        if declared_size.isdigit() and int(declared_size) > limit:
            raise too_large  # refused before reading a byte
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return parse_json_object(bytes(body))

    return read
