"""Search for jobs, and one job's history: what the console's search page reads.

A job is found by its id, an idempotency key (of any tenant), a correlation id, or
its recipient in full. The indexes are sorted sets written with the record
(``ledger/lua/lib_index.lua``; member the job id, score its creation in ms, the
record's TTL); a recipient is named only by its keyed digest, so Redis holds no list
of numbers. No SCAN. A job's history is its record plus the event ring kept in the
record itself (``ledger/lua/lib_events.lua``). Keys: docs/search.md.
"""

from __future__ import annotations

import re

import redis
from pydantic import BaseModel, ConfigDict

from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.domain.models import JobRecord
from connectus_worker.domain.validation import InvalidInput, normalize_email, normalize_number
from connectus_worker.ledger.keys import Keys
from connectus_worker.logging.redaction import redact_text
from connectus_worker.redis import text

#: The longest query looked up (an idempotency key is at most 200 characters).
QUERY_MAX_CHARS = 256
#: A campaign recipient's idempotency key names its job: ``campaign:<cid>:<index>``
#: (and a job sent without a key has ``job:<id>``): no index is kept for either.
_CAMPAIGN_KEY = re.compile(r"^campaign:([A-Za-z0-9_-]+):(\d+)$")


class JobEvent(BaseModel):
    """One transition of a job: when (epoch ms), what, and its detail (masked)."""

    model_config = ConfigDict(frozen=True)

    at_ms: int
    event: str
    detail: str = ""


class JobHistory(JobRecord):
    """A job's record as the API shows it (destination masked, never content or its
    digest), its last error redacted, and its events oldest first."""

    events: list[JobEvent]


def recipient_of(query: str, *, default_region: str = "CL") -> str | None:
    """The normalised recipient ``query`` names (E.164 digits, or a lower-cased
    address), as validation normalises a destination; None if it names none."""
    try:
        if "@" in query:
            return normalize_email(query)
        return normalize_number(query, default_region=default_region)
    except InvalidInput:
        return None


def find_jobs(
    client: redis.Redis,
    keys: Keys,
    query: str,
    *,
    content_hash_key: bytes,
    limit: int = 20,
    default_region: str = "CL",
) -> list[str]:
    """Ids of jobs (with a record) that ``query`` names, newest first per index, at
    most ``limit``: the job id itself first, then by idempotency key, correlation id
    and recipient. Raises :class:`InvalidInput` (field ``query``) for a query that
    is too long or holds a control character; an empty one finds nothing.
    """
    wanted = query.strip()
    if not wanted:
        return []
    if len(wanted) > QUERY_MAX_CHARS:
        raise InvalidInput("query", f"is too long: at most {QUERY_MAX_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in wanted):
        raise InvalidInput("query", "holds a control character")
    if limit < 1:
        raise InvalidInput("limit", "must be at least 1")
    direct = [wanted]
    campaign_key = _CAMPAIGN_KEY.match(wanted)
    if campaign_key:
        direct.append(f"{campaign_key[1]}-{campaign_key[2]}")
    elif wanted.startswith("job:") and len(wanted) > 4:
        direct.append(wanted[4:])  # the key a job sent without one has: its own id
    recipient = recipient_of(wanted, default_region=default_region)
    indexes = index_keys(keys, content_hash_key, recipient=recipient, idempotency_key=wanted,
                         correlation_id=wanted)  # fmt: skip
    pipe = client.pipeline(transaction=False)
    for index in indexes:
        pipe.zrange(index, 0, limit - 1, desc=True)
    indexed = [text(member) for members in pipe.execute() for member in members]
    candidates = list(dict.fromkeys([*direct, *indexed]))
    # An index entry can outlive its record by the time between their TTLs' starts;
    # only jobs still there are answered.
    pipe = client.pipeline(transaction=False)
    for job_id in candidates:
        pipe.exists(keys.job(job_id))
    return [c for c, n in zip(candidates, pipe.execute(), strict=True) if n][:limit]


def job_history(client: redis.Redis, keys: Keys, job_id: str) -> JobHistory | None:
    """The job's masked record and its events, oldest first (one ``HGETALL``);
    None when it has no record (never existed, or expired)."""
    raw = {text(k): text(v) for k, v in client.hgetall(keys.job(job_id)).items()}
    if not raw:
        return None
    record = JobRecord.from_redis(raw)
    last_error = redact_text(record.last_error) if record.last_error else None
    return JobHistory(**{**record.model_dump(), "last_error": last_error}, events=events_of(raw))


def events_of(raw: dict[str, str]) -> list[JobEvent]:
    """The event ring of a record (``ev:<slot>`` = ``<seq>|<at_ms>|<event>|<detail>``),
    oldest first; a malformed entry is left out."""
    entries: list[tuple[int, JobEvent]] = []
    for name, value in raw.items():
        if not name.startswith("ev:"):
            continue
        parts = value.split("|", 3)
        if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        event = JobEvent(at_ms=int(parts[1]), event=parts[2], detail=redact_text(parts[3]))
        entries.append((int(parts[0]), event))
    return [event for _, event in sorted(entries, key=lambda e: e[0])]


def index_keys(
    keys: Keys,
    content_hash_key: bytes,
    *,
    recipient: str | None,
    idempotency_key: str | None,
    correlation_id: str | None,
) -> list[str]:
    """The search indexes of a job (``ledger/lua/enqueue.lua`` writes them), in the order
    :func:`find_jobs` answers: its caller's idempotency key, its correlation id and its
    normalised ``recipient`` (None: a WhatsApp group, no person), each when it has one."""
    found = []
    if idempotency_key:
        found.append(keys.find_idempotency(idempotency_key))
    if correlation_id:
        found.append(keys.find_correlation(correlation_id))
    if recipient:
        found.append(keys.find_recipient(recipient_digest(content_hash_key, recipient)))
    return found
