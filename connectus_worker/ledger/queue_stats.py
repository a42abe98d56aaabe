"""Each queue's depth and the age of its oldest waiting message (the console's overview).

The head of Dramatiq's list of ids is the oldest message; its ``message_timestamp``
(epoch ms) says since when it waits. Two pipelined round trips whatever the depth.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis
from pydantic import BaseModel, ConfigDict

from connectus_worker.ledger.keys import Keys


class QueueStat(BaseModel):
    """``depth``: messages waiting; ``oldest_age_s``: the head's age (None: empty, or
    its message is gone or unreadable)."""

    model_config = ConfigDict(frozen=True)

    queue: str
    depth: int
    oldest_age_s: float | None


def queue_stats(
    client: redis.Redis, keys: Keys, queues: Sequence[str], *, now_ms: int
) -> list[QueueStat]:
    """Depth and oldest age of each of ``queues`` at ``now_ms`` (epoch ms), in order."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(keys.queue(queue))
        pipe.lindex(keys.queue(queue), 0)
    answers = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for queue, head in zip(queues, answers[1::2], strict=True):
        pipe.hget(keys.queue_messages(queue), head or "")  # "": no such field (an empty queue)
    return [
        QueueStat(queue=queue, depth=int(depth), oldest_age_s=_age_s(data, now_ms))
        for queue, depth, data in zip(queues, answers[0::2], pipe.execute(), strict=True)
    ]


def _age_s(data: bytes | str | None, now_ms: int) -> float | None:
    if data is None:
        return None
    try:
        timestamp = json.loads(data)["message_timestamp"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return None
    return max(0.0, (now_ms - timestamp) / 1000)
