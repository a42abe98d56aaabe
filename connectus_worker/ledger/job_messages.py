"""The Dramatiq message that carries a job, and its renewal for a re-enqueue.

Whatever puts a message back on a queue or into a schedule renews it first
(:func:`renew_message`: a new broker-level id). Ids come from :func:`unique_id`, a
random per-process prefix and a counter: two ``uuid4`` per send cost 3-4% of a
worker's CPU at 0 ms latency (docs/benchmarks.md), and the ids need only be unique.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from dramatiq import Message

_prefix = ""
_counter: Iterator[int] = itertools.count()


def _reseed() -> None:
    """80 random bits per process, then a counter. Re-drawn in a forked child: a fork
    without exec would otherwise make the parent's ids."""
    global _prefix, _counter
    _prefix, _counter = uuid.uuid4().hex[:20], itertools.count()


_reseed()
os.register_at_fork(after_in_child=_reseed)


def unique_id() -> str:
    """An id no other message of any process has (e.g. ``3f2a...9c1e-1a``)."""
    # No lock: next() on itertools.count is atomic under the GIL, and a lock held by
    # another thread at a fork would stay held in the child.
    return f"{_prefix}-{next(_counter):x}"


def new_message(queue: str, actor_name: str, job: Mapping[str, Any]) -> Message[Any]:
    """A Dramatiq message carrying one job, with a fresh broker-level id."""
    return Message(
        queue_name=queue,
        actor_name=actor_name,
        args=(),
        kwargs={"job": dict(job)},
        options={"redis_message_id": unique_id()},
        message_id=unique_id(),
    )


def renew_message(message: Message[Any]) -> Message[Any]:
    """The same message with a new broker-level id, for a re-enqueue."""
    return message.copy(options={**message.options, "redis_message_id": unique_id()})
