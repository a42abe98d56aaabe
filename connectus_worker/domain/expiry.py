"""When a job is too late to send: its expiry, counted from when it was due.

A job's age counts from the time it was **due**, never from its creation: a
job scheduled six days ahead (``deliver_at``) is as fresh as a new one when it
comes due. Its expiry is, in order of precedence:

1. its own ``expires_ms`` (a producer's ``max_age_s`` or ``expires_at``,
   computed once at submission, see :mod:`domain.requests`);
2. else due + ``OTP_MAX_AGE_S`` for an OTP, SMS or e-mail alike (a code
   arriving after its login attempt is worse than none);
3. else due + ``MAX_MESSAGE_AGE_S``.

"Due" is the job's ``due_ms`` (its ``deliver_at``) or, when it had none, its
``created_ms`` (the producer's enqueue, a campaign's release of its chunk). A
campaign message parked while its campaign was paused or outside its window
is due again when the campaign runs again (``resumed_ms``): a weekend outside
a Monday-to-Friday window does not expire it.

The worker checks before every send (:mod:`worker.pipeline`), and the
dead-letter tools before a replay (:mod:`ledger.deadletters`), with the same
rule. Times: epoch milliseconds (``*_ms``), ages in seconds (``*_s``).
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
    why: str  # "expires_at", "OTP_MAX_AGE_S (300 s)" or "MAX_MESSAGE_AGE_S (86400 s)"

    def reason(self) -> str:
        """The dead letter's reason: ``expired: ...`` with the limit and the time."""
        return f"expired: not sent by {_iso(self.at_ms)} ({self.why})"


class AgeLimits:
    """The default maximum ages, in s (``MAX_MESSAGE_AGE_S``, ``OTP_MAX_AGE_S``).

    Checked twice per send: the texts are made once, here, not per check.
    """

    __slots__ = ("_otp_why", "_why", "max_message_age_s", "otp_max_age_s")

    def __init__(self, max_message_age_s: int, otp_max_age_s: int) -> None:
        self.max_message_age_s = max_message_age_s
        self.otp_max_age_s = otp_max_age_s
        self._otp_why = f"OTP_MAX_AGE_S ({otp_max_age_s} s) after it was due"
        self._why = f"MAX_MESSAGE_AGE_S ({max_message_age_s} s) after it was due"

    def default(self, kind: Kind, due_ms: int) -> Expiry:
        """The expiry of a job of ``kind`` due at ``due_ms`` that names none of its own."""
        if kind.is_otp:
            return Expiry(due_ms + self.otp_max_age_s * 1000, self._otp_why)
        return Expiry(due_ms + self.max_message_age_s * 1000, self._why)

    def of_job(
        self, kind: Kind, job: Mapping[str, Any], *, now_ms: int, resumed_ms: int | None = None
    ) -> Expiry:
        """The expiry of a queued job message.

        ``now_ms``: due now if the message says nothing of when (an older
        producer's); ``resumed_ms``: its campaign ran again then.
        """
        own = _int(job.get("expires_ms"))
        if own is not None:
            return Expiry(own, OWN)
        return self.default(kind, max(due_ms(job, now_ms=now_ms), resumed_ms or 0))

    def of_record(self, record: JobRecord) -> Expiry:
        """The same rule read from a job's record (a dead letter's, before a replay)."""
        if record.expires_at is not None:
            return Expiry(_ms(record.expires_at), OWN)
        due = record.deliver_at or record.created_at
        return self.default(record.kind, _ms(due))


def due_ms(job: Mapping[str, Any], *, now_ms: int) -> int:
    """When the job was due (epoch ms): its ``due_ms``, else ``created_ms``, else now."""
    for name in ("due_ms", "created_ms"):
        value = _int(job.get(name))
        if value is not None:
            return value
    return now_ms


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")
