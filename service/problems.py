"""RFC 7807 problem documents (``application/problem+json``).

Every error the service answers is one of these, so clients parse one shape:
``{"type", "title", "status", "detail"}`` plus ``invalid-params`` (a list of
``{"name", "reason"}``) when fields were rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import JSONResponse

from core.validation import FieldError, InvalidInput

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
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
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.title = title

    @classmethod
    def from_invalid(cls, exc: InvalidInput, *, status: int = 422) -> ProblemError:
        return cls(status, str(exc), errors=exc.errors)


def problem_body(
    status: int, detail: str, *, errors: Iterable[FieldError] = (), title: str | None = None
) -> dict[str, Any]:
    """The problem document; ``invalid-params`` only when there are field errors."""
    errors = list(errors)
    if errors:
        body = InvalidInput.from_errors(errors).to_problem(
            status=status, title=title or _TITLES.get(status, "Error")
        )
        body["detail"] = detail
        return body
    return {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }


def problem_response(
    status: int,
    detail: str,
    *,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, errors=errors, title=title),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


def response_for(exc: ProblemError) -> JSONResponse:
    return problem_response(
        exc.status, exc.detail, errors=exc.errors, headers=exc.headers, title=exc.title
    )
