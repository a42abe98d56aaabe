"""RFC 7807 problem documents (``application/problem+json``), the one shape of every error.

``{"type", "title", "status", "detail"}``, plus ``invalid-params`` (``{"name", "reason"}``
each) when fields were rejected, and extension members (RFC 7807 section 3.2) where
an answer needs more, e.g. a refused campaign's ``refusals`` and ``invalid_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from starlette.responses import JSONResponse

from connectus_worker.domain.validation import FieldError, InvalidInput

PROBLEM_JSON = "application/problem+json"
#: What a job or campaign id may look like (ours are 32 and 16 hex digits).
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
T = TypeVar("T")


class ProblemError(Exception):
    """Raised anywhere in a handler; the app answers it with :meth:`response`."""

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
        # RFC 7807 4.2: with the type about:blank, the title is the status's phrase.
        self.title = title or HTTPStatus(status).phrase
        self.extensions = dict(extensions or {})

    @classmethod
    def from_invalid(cls, exc: InvalidInput) -> ProblemError:
        return cls(422, str(exc), errors=exc.errors)

    def response(self) -> JSONResponse:
        """The problem document; ``invalid-params`` only when there are field errors,
        and ``extensions`` never replace a standard member."""
        body: dict[str, Any] = {"type": "about:blank", "title": self.title,
                                "status": self.status, "detail": self.detail}  # fmt: skip
        if self.errors:
            body["invalid-params"] = [error.as_problem_param() for error in self.errors]
        for name, value in self.extensions.items():
            body.setdefault(name, value)
        return JSONResponse(body, self.status, self.headers, media_type=PROBLEM_JSON)


def found(read: Callable[[str], T], item_id: str, missing: type[Exception], what: str) -> T:
    """``read(item_id)``; a 404 for an id of the wrong shape (``ID_PATTERN``: a 404, not
    a 422) or when it raises ``missing`` (another tenant's item is not found either)."""
    if not re.match(ID_PATTERN, item_id):
        raise ProblemError(404, f"no such {what}")
    try:
        return read(item_id)
    except missing as exc:
        raise ProblemError(404, str(exc)) from exc


def problem_response(status: int, detail: str, **options: Any) -> JSONResponse:
    return ProblemError(status, detail, **options).response()
