"""RFC 7807 problem documents (``application/problem+json``).

Every error the service answers is one of these, so clients parse one shape:
``{"type", "title", "status", "detail"}`` plus ``invalid-params`` (a list of
``{"name", "reason"}``) when fields were rejected, and extension members
(RFC 7807 section 3.2) where an answer needs more, e.g. a refused campaign's
``refusals`` and ``invalid_rows``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import JSONResponse

from connectus_worker.domain.validation import FieldError, InvalidInput

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal server error",
    503: "Service unavailable",
}


class ProblemError(Exception):
    """Raised anywhere in a handler; the app turns it into a problem response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.title = title
        self.extensions = dict(extensions or {})

    @classmethod
    def from_invalid(cls, exc: InvalidInput, *, status: int = 422) -> ProblemError:
        return cls(status, str(exc), errors=exc.errors)


def problem_body(
    status: int,
    detail: str,
    *,
    errors: Iterable[FieldError] = (),
    title: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document; ``invalid-params`` only when there are field errors.

    ``extensions`` are added as members; they never replace a standard one.
    """
    errors = list(errors)
    body: dict[str, Any]
    if errors:
        body = InvalidInput.from_errors(errors).to_problem(
            status=status, title=title or _TITLES.get(status, "Error")
        )
        body["detail"] = detail
    else:
        body = {
            "type": "about:blank",
            "title": title or _TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
        }
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, errors=errors, title=title, extensions=extensions),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


def response_for(exc: ProblemError) -> JSONResponse:
    return problem_response(
        exc.status,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        title=exc.title,
        extensions=exc.extensions,
    )
