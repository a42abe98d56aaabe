"""The jobs whose delivery status is polled at Connectus: e-mail and WhatsApp.

One sorted set (``Keys.status_watch``): job id → when its next lookup is due (epoch
ms). The enqueue script adds a single job, the campaign poller a released chunk's; the
:class:`worker.channel_status.ChannelStatusPoller` looks each due one up and moves it
one interval on, or drops it. A job is in it once: one lookup per interval at most.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from connectus_worker.domain.models import Kind
from connectus_worker.ledger.keys import Keys

#: The kinds polled: the SMS kinds have the status webhook and the campaign
#: poller; QR has no status call.
WATCHED_KINDS = frozenset(kind for kind in Kind if kind.spec.watched)


def watch(client: redis.Redis, keys: Keys, job_ids: Iterable[str], due_ms: int) -> int:
    """Add jobs not watched yet, first due at ``due_ms`` (epoch ms); returns how many."""
    members = dict.fromkeys(job_ids, due_ms)
    if not members:
        return 0
    added = client.zadd(keys.status_watch, members, nx=True)
    return int(added or 0)
