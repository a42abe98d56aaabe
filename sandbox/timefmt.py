"""Time conversions in the account time zone (America/Santiago by default).

The state keeps epoch seconds (float); the API speaks ``YYYY-MM-DD HH:MM:SS``
local time, as the documents' ``deliver_at`` examples do.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"


class AccountTime:
    """Formats and parses local times of one zone; one instance per state."""

    __slots__ = ("zone",)

    def __init__(self, zone_name: str) -> None:
        self.zone = zoneinfo.ZoneInfo(zone_name)

    def format(self, epoch_s: float) -> str:
        return dt.datetime.fromtimestamp(epoch_s, self.zone).strftime(DATETIME_FORMAT)

    def iso(self, epoch_s: float) -> str:
        return dt.datetime.fromtimestamp(epoch_s, self.zone).isoformat(timespec="seconds")

    def parse_datetime(self, text: object) -> float | None:
        """Epoch seconds of a local ``YYYY-MM-DD HH:MM:SS``; ``None`` if malformed."""
        if not isinstance(text, str):
            return None
        try:
            naive = dt.datetime.strptime(text.strip(), DATETIME_FORMAT)
        except ValueError:
            return None
        return naive.replace(tzinfo=self.zone).timestamp()

    def day_bounds(self, begin: object, end: object) -> tuple[float, float] | None:
        """``[start of begin, start of the day after end)`` in epoch seconds."""
        if not isinstance(begin, str) or not isinstance(end, str):
            return None
        try:
            first = dt.datetime.strptime(begin.strip(), DATE_FORMAT)
            last = dt.datetime.strptime(end.strip(), DATE_FORMAT) + dt.timedelta(days=1)
        except ValueError:
            return None
        return first.replace(tzinfo=self.zone).timestamp(), last.replace(
            tzinfo=self.zone
        ).timestamp()
