"""What every sub-API shares: the client's ``call``, a root URL, and argument checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import quote

from connectus_worker.worker.connectus.answers import SendResult
from connectus_worker.worker.connectus.errors import InvalidRequest

if TYPE_CHECKING:
    from connectus_worker.worker.connectus.client import ConnectusClient

E = TypeVar("E")
T = TypeVar("T")


class SubApi:
    """A group of calls under one root URL (``base_url`` + ``PREFIX``).

    ``BEARER``: the group's calls use the bearer token, when one is configured (QR).
    """

    PREFIX: ClassVar[str] = ""
    BEARER: ClassVar[bool] = False

    def __init__(self, client: ConnectusClient, base_url: str) -> None:
        self._client = client
        self._root = base_url.rstrip("/") + self.PREFIX

    def _call(
        self, method: str, parse: Callable[[Any], T], path: str, *ids: str, **options: Any
    ) -> T:
        """``method`` on ``root/path/ids...``; ``options`` as :meth:`ConnectusClient.call`'s."""
        # Each id is quoted as one segment: an id with "/" or "?" can't reach another route.
        url = "/".join([self._root, path, *(quote(s, safe="") for s in ids)])
        return self._client.call(method, url, parse, bearer=self.BEARER, **options)

    def _send(self, path: str, body: Mapping[str, Any]) -> SendResult:
        """POST a message as JSON; a 2xx answer with an error status raises too."""
        return self._call("POST", SendResult.from_body, path, json_body=body, send=True)


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
