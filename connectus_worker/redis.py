"""One Redis client per process, from the settings: ``REDIS_URL``, or the primary that
Redis Sentinel names (``REDIS_SENTINELS``).

Through Sentinel (redis-py's ``master_for``) each new connection asks the sentinels
for the primary and a ``READONLY`` one is dropped: a failover is one
``ConnectionError`` per broken connection, and the callers' retries reconnect to the
promoted replica without a restart.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel

from connectus_worker.config import Settings
from connectus_worker.config.checks import sentinel_addresses

#: Socket timeouts (s): a Redis outage surfaces as an error the caller handles,
#: never as a thread blocked forever.
CONNECT_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 10.0


def connect(
    settings: Settings,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    **options: Any,
) -> redis.Redis:
    """A pooled client of the primary; ``options`` go to redis-py's client (e.g. ``retry``)."""
    options = {
        "socket_connect_timeout": connect_timeout_s,
        "socket_timeout": socket_timeout_s,
        "health_check_interval": 30,
        "retry_on_timeout": False,
        **options,
    }
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    # The database number and TLS come from REDIS_URL (its host is not used);
    # the data nodes' password from REDIS_PASSWORD, else REDIS_URL's.
    url = urlsplit(settings.redis_url)
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    sentinel_password = settings.redis_sentinel_password
    sentinel = Sentinel(
        sentinel_addresses(settings.redis_sentinels),
        sentinel_kwargs={
            "socket_connect_timeout": connect_timeout_s,
            "socket_timeout": socket_timeout_s,
            "password": sentinel_password.get_secret_value() if sentinel_password else None,
        },
    )
    primary: redis.Redis = sentinel.master_for(
        settings.redis_sentinel_master,
        db=int(url.path.lstrip("/") or 0),
        password=password or url.password,
        username=url.username,
        ssl=url.scheme == "rediss",
        **options,
    )
    return primary


def text(value: object) -> str:
    """A Redis reply as text (the clients answer bytes; fakes and scripts may answer str
    or a number)."""
    return value.decode() if isinstance(value, bytes) else str(value)
