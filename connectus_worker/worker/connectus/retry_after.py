"""Parse an HTTP ``Retry-After`` header (RFC 9110 §10.2.3) into seconds."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds (s), from delta-seconds or an HTTP-date.

    None when absent or unparseable (the caller then uses its own backoff).
    A date in the past means "now" (0.0): never a negative wait. ``now``
    (aware) is injectable for tests.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP-date is GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
