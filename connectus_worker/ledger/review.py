"""Jobs held for an operator's review: list, resend, drop (``connectus review``, the console).

An ambiguous send of a kind Connectus offers no listing for (e-mail) is held
under ``RECONCILE_UNDECIDABLE=review``, as is a WhatsApp QR group message not
found in the group's last messages. An operator checks and decides.
"""

from __future__ import annotations

from typing import Any

from connectus_worker.ledger.jobs import JobStore
from connectus_worker.redis import text


def held(store: JobStore, *, limit: int) -> list[dict[str, Any]]:
    """The oldest ``limit`` held jobs: job_id, kind, dst (masked, as recorded), error."""
    rows = []
    for job_id in map(text, store.client.zrange(store.keys.review, 0, limit - 1)):
        record = store.get(job_id)
        rows.append({"job_id": job_id, "kind": record.kind.value if record else None,
                     "dst": record.dst if record else None,
                     "error": record.last_error if record else "record expired"})  # fmt: skip
    return rows


def resend(store: JobStore, job_id: str) -> str:
    """Send a held job again (same job id and idempotency key): ``requeued``,
    ``not_held`` or ``not_unknown`` (settled meanwhile)."""
    message = store.held_message(job_id, review=True)
    if message is None:
        return "not_held"
    done = store.resolve(job_id, "requeue", review=True, message=message)
    return "requeued" if done else "not_unknown"


def drop(store: JobStore, job_id: str) -> str:
    """Give a held job up (``failed``, ``DroppedAfterReview``): ``dropped``, ``not_held``
    or ``not_unknown``."""
    if store.client.zscore(store.keys.review, job_id) is None:
        return "not_held"
    done = store.resolve(job_id, "fail", review=True, error_class="DroppedAfterReview",
                         reason="outcome unknown; dropped by an operator after review")  # fmt: skip
    return "dropped" if done else "not_unknown"
