"""What every sub-API shares: the transport, its base URL, and argument helpers."""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar
from urllib.parse import quote

from connectus_worker.worker.connectus.errors import InvalidRequest
from connectus_worker.worker.connectus.transport import Transport

E = TypeVar("E")


class SubApi:
    """A group of calls under one base URL (``base_url`` + ``prefix``)."""

    def __init__(self, transport: Transport, base_url: str, prefix: str = "") -> None:
        self._t = transport
        self._root = base_url.rstrip("/") + prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._root!r})"

    def _url(self, *segments: str) -> str:
        # Ids are quoted as one segment: an id with "/" or "?" can't reach another route.
        return "/".join([self._root, *(quote(s, safe="") for s in segments)])


def require_id(name: str, value: str) -> str:
    """A non-empty id, or ValueError (a caller bug, not a Connectus answer)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def wall_clock(name: str, value: datetime | str) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in the account's time zone, as the API wants it.

    An aware datetime is refused: the API takes account-local wall-clock time
    and silently dropping an offset would schedule at the wrong hour.
    """
    if isinstance(value, str):
        try:
            datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        except ValueError as exc:
            raise ValueError(f"{name} must look like 2024-07-20 12:00:00") from exc
        return value
    if value.tzinfo is not None:
        raise ValueError(f"{name}: pass a naive datetime in the account's time zone")
    return value.strftime("%Y-%m-%d %H:%M:%S")


def day(name: str, value: date | str) -> str:
    """``YYYY-MM-DD``."""
    if isinstance(value, datetime):
        raise ValueError(f"{name} is a date, not a datetime")
    if isinstance(value, date):
        return value.isoformat()
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{name} must look like 2024-07-20") from exc
    return value


def check_enum(name: str, value: object, kind: type[E]) -> E:
    """``value`` if it is a member of ``kind``; another IntEnum equal to it is not."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__}, got {value!r}")
    return value


def refuse(reason: str, message: str) -> InvalidRequest:
    """An InvalidRequest raised before sending: the input can never be accepted."""
    return InvalidRequest(message, reason=reason)
