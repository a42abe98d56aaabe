"""The Dramatiq message that carries a job, and its renewal for a re-enqueue.

Producers build one per job and workers the copies they keep
(:func:`new_message`); whatever puts it back on a queue or into a schedule
renews it first (:func:`renew_message`), with a new broker-level id. Split
from :mod:`core.jobs` (size guideline): what a message is, apart from the
ledger that :class:`core.jobs.JobStore` keeps.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from dramatiq import Message


def new_message(queue: str, actor_name: str, job: Mapping[str, Any]) -> Message[Any]:
    """A Dramatiq message carrying one job, with a fresh broker-level id."""
    return Message(
        queue_name=queue,
        actor_name=actor_name,
        args=(),
        kwargs={"job": dict(job)},
        options={"redis_message_id": str(uuid.uuid4())},
    )


def renew_message(message: Message[Any]) -> Message[Any]:
    """The same message with a new broker-level id, for a re-enqueue."""
    return message.copy(options={**message.options, "redis_message_id": str(uuid.uuid4())})
