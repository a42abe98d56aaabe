"""Query, inspect and purge the dead-letter set (``connectus dlq``).

Members are job ids (with a record and a replayable message copy) or poison entries
(``poison:<id>``: undecodable or of an unknown actor; ``malformed:<id>``: not a job;
or a job whose record expired), whose reason is in :attr:`Keys.dead_letter_reasons`:
listed and purged, never replayed. Nor is a job past its expiry: it would die again
at once. ``*_ms`` are epoch milliseconds; ages and durations seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dramatiq import Message

from connectus_worker.domain.expiry import OWN, AgeLimits, Expiry
from connectus_worker.domain.models import JobRecord
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.logging.redaction import (
    EMAIL_KEYS,
    PHONE_KEYS,
    mask_email,
    mask_phone,
    redact_text,
)
from connectus_worker.redis import text

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_BATCH = 500
_POISON = ("poison:", "malformed:")


def parse_duration(text: str) -> float:
    """``90``, ``45s``, ``30m``, ``1h``, ``2d``, ``1w`` -> seconds; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h, 2d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True, slots=True)
class Filter:
    """Which dead letters: all given conditions must hold.

    ``reason``: case-insensitive substring of the error class or last error.
    ``older_than_s`` / ``newer_than_s``: age since dead-lettering (s).
    """

    queue: str | None = None
    reason: str | None = None
    older_than_s: float | None = None
    newer_than_s: float | None = None

    def matches(self, entry: DeadLetter) -> bool:
        needle = (self.reason or "").lower()
        return (self.queue is None or entry.queue == self.queue) and (
            needle in entry.error_class.lower() or needle in entry.reason.lower()
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One member of the dead-letter set; ``poison`` entries are not replayable."""

    member: str
    died_at_ms: int
    poison: bool
    error_class: str
    reason: str
    record: JobRecord | None
    #: Set when a replay would expire again at once: when and by which limit.
    expired: Expiry | None = None

    @property
    def kind(self) -> str | None:
        return self.record.kind.value if self.record else None

    @property
    def queue(self) -> str | None:
        return self.record.queue if self.record else None

    @property
    def replayable(self) -> tuple[bool, str]:
        """``(can replay, why not)``."""
        if self.poison or self.record is None:
            return False, "a poison entry (no job record) can't be replayed; purge it instead"
        if self.record.kind.spec.otp:
            return False, "an OTP is not replayed: its code was not kept and would be stale"
        if self.expired is not None:
            return False, (
                f"it would expire again at once: {self.expired.reason()}; "
                "send it anew (a new job) instead"
            )
        return True, ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.member,
            "died_at_ms": self.died_at_ms,
            "poison": self.poison,
            "kind": self.kind,
            "queue": self.queue,
            "error_class": self.error_class,
            "reason": self.reason,
            "replayable": self.replayable[0],
            "not_replayable_because": self.replayable[1] or None,
        }


class DeadLetters:
    """The dead-letter set of one deployment, read through ``store``."""

    def __init__(self, store: JobStore, *, limits: AgeLimits | None = None) -> None:
        """``limits``: the deployment's default ages (``MAX_MESSAGE_AGE_S``,
        ``OTP_MAX_AGE_S``); without them only a job's own ``expires_at`` counts."""
        self.store = store
        self.keys = store.keys
        self.limits = limits

    def find(self, where: Filter, *, limit: int | None = None) -> list[DeadLetter]:
        """Matching entries, newest first; at most ``limit`` (None: all)."""
        found: list[DeadLetter] = []
        for entry in self._scan(where):
            if where.matches(entry):
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def get(self, member: str) -> DeadLetter | None:
        score = self.store.client.zscore(self.keys.dead_letters, member)
        if score is None:
            return None
        return self._entries([(member, float(score))])[0]

    def message(self, member: str) -> dict[str, Any] | None:
        """The kept message, destination masked (OTP content was never kept)."""
        data = self.store.client.hget(self.keys.dead_letter_messages, member)
        if data is None:
            return None
        raw = data if isinstance(data, bytes) else str(data).encode()
        try:
            decoded = Message.decode(raw)
        except Exception:
            try:
                loaded = json.loads(raw)
            except ValueError:
                head = raw[:500].decode("utf-8", "replace")
                return {"raw": redact_text(head), "bytes": len(raw)}
            return {"raw": _mask(loaded)}
        return {
            "queue": decoded.queue_name,
            "actor": decoded.actor_name,
            "kwargs": _mask(decoded.kwargs),
            "message_timestamp": decoded.message_timestamp,
        }

    def replay(self, entries: list[DeadLetter]) -> list[dict[str, str]]:
        """Put each replayable entry back on its queue (same job id and idempotency key);
        one ``{job_id, result, error?}`` per entry: ``replayed``, ``missing`` (gone
        meanwhile) or ``refused`` with the reason (poison, OTP, past its expiry)."""
        results: list[dict[str, str]] = []
        for entry in entries:
            ok, why = entry.replayable
            answer = {"result": self.store.replay(entry.member)} if ok else (
                {"result": "refused", "error": why})  # fmt: skip
            results.append({"job_id": entry.member, **answer})
        return results

    def purge(self, members: list[str]) -> int:
        """Remove entries (set member, kept message, reason); returns how many were there.
        Job records are left to expire (``JOB_TTL_S``), so ``status`` still answers."""
        removed = 0
        for start in range(0, len(members), _BATCH):
            batch = members[start : start + _BATCH]
            pipe = self.store.client.pipeline(transaction=True)
            pipe.zrem(self.keys.dead_letters, *batch)
            pipe.hdel(self.keys.dead_letter_messages, *batch)
            pipe.hdel(self.keys.dead_letter_reasons, *batch)
            removed += int(pipe.execute()[0])
        return removed

    def _scan(self, where: Filter) -> Iterator[DeadLetter]:
        now = self.store.clock()
        older, newer = where.older_than_s, where.newer_than_s
        high: float | str = "+inf" if older is None else now - older * 1000
        low: float | str = "-inf" if newer is None else now - newer * 1000
        offset = 0
        while True:
            rows: list[tuple[bytes, float]] = self.store.client.zrevrangebyscore(  # type: ignore[assignment]
                self.keys.dead_letters, high, low, start=offset, num=_BATCH, withscores=True
            )
            if not rows:
                return
            yield from self._entries([(text(m), s) for m, s in rows])
            offset += len(rows)

    def _entries(self, rows: list[tuple[str, float]]) -> list[DeadLetter]:
        pipe = self.store.client.pipeline(transaction=False)
        for member, _ in rows:
            pipe.hgetall(self.keys.job(member))
            pipe.hget(self.keys.dead_letter_reasons, member)
        answers = pipe.execute()
        now = self.store.clock()
        entries = []
        for (member, score), raw, kept_reason in zip(
            rows, answers[::2], answers[1::2], strict=True
        ):
            record = JobRecord.from_redis(raw) if raw else None
            poison = record is None or kept_reason is not None or member.startswith(_POISON)
            if record is not None and not poison:
                error_class, reason = record.error_class or "", record.last_error or ""
            else:
                error_class = "RecordExpired"
                if member.startswith(_POISON):
                    error_class = member.split(":", 1)[0].capitalize()
                reason = text(kept_reason) if kept_reason is not None else "record expired"
            expired = self._expired(record, now) if record is not None else None
            entries.append(
                DeadLetter(member, int(score), poison, error_class, reason, record, expired)
            )
        return entries

    def _expired(self, record: JobRecord, now_ms: int) -> Expiry | None:
        """The record's expiry if it has passed (a replay would be dead at once)."""
        if self.limits is not None:
            expiry = self.limits.of_record(record)
        elif record.expires_at is not None:
            expiry = Expiry(int(record.expires_at.timestamp() * 1000), OWN)
        else:
            return None
        return expiry if now_ms > expiry.at_ms else None


def _mask(value: Any, key: str = "") -> Any:
    """Mask destinations (by field name, and any number or address in text)."""
    if isinstance(value, Mapping):
        return {k: _mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, key) for v in value]
    if isinstance(value, str | int) and not isinstance(value, bool):
        if key.lower() in EMAIL_KEYS:
            return mask_email(str(value))
        if key.lower() in PHONE_KEYS:
            return mask_phone(value)
        return redact_text(value) if isinstance(value, str) else value
    return value
