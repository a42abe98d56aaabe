"""When to deliver: ``deliver_at`` as given by a caller, in the account's time zone.

Wall-clock or ISO 8601 times, DST folds and gaps resolved explicitly, the accepted
window around now. Rejections are :class:`domain.validation.InvalidInput`.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta

from connectus_worker.domain.validation import InvalidInput

#: deliver_at may lie this far in the past (clock skew between hosts), in s.
DELIVER_AT_PAST_GRACE_S = 300
#: deliver_at may lie at most this far in the future, in s (366 days).
DELIVER_AT_HORIZON_S = 366 * 86_400

# Date and time are required; seconds, fraction and offset are optional.
_DATETIME_SHAPE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)


def localize(naive: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Attach ``zone`` to a wall-clock time, resolving DST explicitly (PEP 495 ``fold=0``).

    A fold (an hour that occurs twice) gives the *earlier* instant, so a message is
    never an hour late; a gap (a skipped hour) moves the time forward by the gap
    (00:30 in a 00:00→01:00 gap is 01:30), never earlier than the wall time asked for.
    """
    earlier = naive.replace(tzinfo=zone, fold=0)
    later = naive.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() == later.utcoffset():
        return earlier  # the common case: unambiguous
    round_trip = earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if round_trip != naive:
        return earlier.astimezone(UTC).astimezone(zone)  # gap: shifted forward
    return earlier  # fold: first occurrence


def parse_deliver_at(
    value: datetime | str | None,
    *,
    tz: str = "America/Santiago",
    now: datetime | None = None,
    field: str = "deliver_at",
) -> datetime | None:
    """When to deliver, as an aware UTC datetime; None means "now".

    A datetime, or text as Connectus writes it (``YYYY-MM-DD HH:MM:SS``) or ISO 8601;
    without an offset, a wall-clock time in ``tz``. Refused more than
    ``DELIVER_AT_PAST_GRACE_S`` before ``now`` or ``DELIVER_AT_HORIZON_S`` after it.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidInput(field, "is empty (omit it to deliver now)")
        if not _DATETIME_SHAPE.match(text):
            raise InvalidInput(
                field, "is not a date and time (expected YYYY-MM-DD HH:MM:SS or ISO 8601)"
            )
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidInput(field, f"is not a valid date and time: {exc}") from exc
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        raise InvalidInput(field, "is a date without a time of day")
    else:
        raise InvalidInput(field, "must be a datetime or a string")
    try:
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            parsed = localize(parsed, zoneinfo.ZoneInfo(tz))  # DEFAULT_TIMEZONE: checked at load
        result = parsed.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise InvalidInput(field, "is out of the range of dates") from exc
    reference = (now or datetime.now(UTC)).astimezone(UTC)
    if result < reference - timedelta(seconds=DELIVER_AT_PAST_GRACE_S):
        raise InvalidInput(field, f"is in the past ({result.isoformat()})")
    if result > reference + timedelta(seconds=DELIVER_AT_HORIZON_S):
        raise InvalidInput(field, f"is more than {DELIVER_AT_HORIZON_S // 86_400} days ahead")
    return result
