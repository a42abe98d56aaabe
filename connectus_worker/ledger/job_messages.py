"""The Dramatiq message that carries a job, and its renewal for a re-enqueue.

Whatever puts a message back on a queue or into a schedule renews it first
(:func:`renew_message`: a new broker-level id, ``redis_message_id``).
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
        options={"redis_message_id": uuid.uuid4().hex},
    )


def renew_message(message: Message[Any]) -> Message[Any]:
    """The same message with a new broker-level id, for a re-enqueue."""
    return message.copy(options={**message.options, "redis_message_id": uuid.uuid4().hex})
