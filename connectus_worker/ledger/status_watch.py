"""The jobs whose delivery status is polled at Connectus: e-mail and WhatsApp.

One sorted set, ``{prefix}:status-watch``: job id → when it is next due for a
lookup (epoch ms). The producer adds a single e-mail or WhatsApp job in the
script that queues it (ledger/lua/enqueue.lua); the campaign status poller adds a
released chunk's jobs; the :class:`worker.channel_status.ChannelStatusPoller`
takes the due ones, looks
each up once and moves it one interval later, or drops it (final status, too
old, never sent). A job is in the set at most once, so it costs at most one
lookup per interval, however many processes poll.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from connectus_worker.domain.models import Kind
from connectus_worker.ledger.keys import Keys

#: The kinds polled: the SMS kinds have the status webhook and the campaign
#: poller; QR has no status call.
WATCHED_KINDS = frozenset(kind for kind in Kind if kind.spec.watched)


def watch_key(keys: Keys) -> str:
    return f"{keys.prefix}:status-watch"


def watch(client: redis.Redis, keys: Keys, job_ids: Iterable[str], due_ms: int) -> int:
    """Add jobs not watched yet, first due at ``due_ms`` (epoch ms); returns how many."""
    members = dict.fromkeys(job_ids, due_ms)
    if not members:
        return 0
    added = client.zadd(watch_key(keys), members, nx=True)
    return int(added or 0)
