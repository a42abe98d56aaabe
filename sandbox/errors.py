"""The one exception handlers raise to answer with a documented error body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: ``{"error": message}`` plus ``field`` for a 400 about one field.

    ``extra`` adds documented keys (e.g. ``product`` / ``id_country`` on a 402).
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.extra:
            out.update(self.extra)
        return out


def bad_request(field: str, message: str | None = None) -> ApiError:
    return ApiError(400, message or f"Invalid or missing parameter: {field}", field=field)


def not_found() -> ApiError:
    return ApiError(404, "Not found")
