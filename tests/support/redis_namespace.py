"""Per-test key namespaces on a shared Redis.

Tests may run against a developer's own Redis (``REDIS_URL`` or the local
6379), so isolation is by key prefix, never by FLUSHDB: a test only ever
deletes keys under its own ``cwtest-<hex>`` prefix. The prefix is a valid
``KEY_PREFIX``, and Dramatiq's namespace derived from it
(``<prefix>-dramatiq``, see :class:`ledger.keys.Keys`) falls under the same
pattern, so one cleanup removes both.
"""

from __future__ import annotations

import uuid

import redis


def new_prefix() -> str:
    """A fresh prefix: ``cwtest-`` and 12 hex digits (no glob characters)."""
    return f"cwtest-{uuid.uuid4().hex[:12]}"


def delete_prefix(client: redis.Redis, prefix: str, *, batch: int = 500) -> int:
    """Delete every key starting with ``prefix``; return how many were deleted.

    SCAN, not KEYS: it does not block a shared server.
    """
    if not prefix or any(char in prefix for char in "*?[]\\"):
        raise ValueError(f"refusing to delete under prefix {prefix!r}")
    deleted = 0
    pending: list[bytes | str] = []
    for key in client.scan_iter(match=f"{prefix}*", count=batch):
        pending.append(key)
        if len(pending) >= batch:
            deleted += int(client.delete(*pending))
            pending.clear()
    if pending:
        deleted += int(client.delete(*pending))
    return deleted
