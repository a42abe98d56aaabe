"""When a job is too late to send: its expiry, counted from when it was due.

Its age counts from when it was **due** (``due_ms``: its ``deliver_at``, else
``created_ms``; a campaign message parked while its campaign was paused or outside its
window is due again at ``resumed_ms``), never from its creation. Its expiry is its own
``expires_ms`` (``max_age_s`` or ``expires_at``), else due + ``OTP_MAX_AGE_S`` for an
OTP (a code late for its login is worse than none), else due + ``MAX_MESSAGE_AGE_S``.
The worker checks it before every send, the dead-letter tools before a replay.
Times: epoch milliseconds (``*_ms``), ages in seconds (``*_s``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectus_worker.domain.models import JobRecord, Kind

#: Why a job with a limit of its own expires when it does.
OWN = "its expires_at / max_age_s"


@dataclass(frozen=True, slots=True)
class Expiry:
    """A job's expiry and why it is that (for the dead letter's reason)."""

    at_ms: int
    why: str  # OWN, or "OTP_MAX_AGE_S (300 s) after it was due"

    def reason(self) -> str:
        """The dead letter's reason: ``expired: ...`` with the limit and the time."""
        at = datetime.fromtimestamp(self.at_ms / 1000, tz=UTC).isoformat(timespec="seconds")
        return f"expired: not sent by {at} ({self.why})"


@dataclass(frozen=True, slots=True)
class AgeLimits:
    """The default maximum ages, in s (``MAX_MESSAGE_AGE_S``, ``OTP_MAX_AGE_S``)."""

    max_message_age_s: int
    otp_max_age_s: int

    def default(self, kind: Kind, due_ms: int) -> Expiry:
        """The expiry of a job of ``kind`` due at ``due_ms`` that names none of its own."""
        name, age_s = "MAX_MESSAGE_AGE_S", self.max_message_age_s
        if kind.spec.otp:
            name, age_s = "OTP_MAX_AGE_S", self.otp_max_age_s
        return Expiry(due_ms + age_s * 1000, f"{name} ({age_s} s) after it was due")

    def of_job(
        self, kind: Kind, job: Mapping[str, Any], *, now_ms: int, resumed_ms: int | None = None
    ) -> Expiry:
        """The expiry of a queued job message.

        Due at its ``due_ms``, else ``created_ms``, else ``now_ms`` (an older producer's
        message says nothing of when); ``resumed_ms``: its campaign ran again then.
        """
        own = _int(job.get("expires_ms"))
        if own is not None:
            return Expiry(own, OWN)
        given = (_int(job.get(name)) for name in ("due_ms", "created_ms"))
        due = next((ms for ms in given if ms is not None), now_ms)
        return self.default(kind, max(due, resumed_ms or 0))

    def of_record(self, record: JobRecord) -> Expiry:
        """The same rule read from a job's record (a dead letter's, before a replay)."""
        if record.expires_at is not None:
            return Expiry(_ms(record.expires_at), OWN)
        due = record.deliver_at or record.created_at
        return self.default(record.kind, _ms(due))


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
