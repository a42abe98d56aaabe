"""One Redis client per process, built from the settings."""

from __future__ import annotations

import redis

from config import Settings


def connect(settings: Settings) -> redis.Redis:
    """A pooled client for ``REDIS_URL`` (``redis://``, ``rediss://`` for TLS, ``unix://``).

    Socket timeouts are bounded (s) so that a Redis outage surfaces as an
    error the caller handles, never as a thread blocked forever.
    """
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=5.0,
        socket_timeout=10.0,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def text(value: bytes | str) -> str:
    """A Redis reply as text (the clients answer bytes; fakes and scripts may answer str)."""
    return value.decode() if isinstance(value, bytes) else value
