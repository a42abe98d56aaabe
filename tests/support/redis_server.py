"""Re-export of :mod:`devtools.embedded_redis` for tests.

The class lives in ``devtools`` because ``make demo`` needs it outside the test
suite; tests import it from here so that the test-facing name stays put.
Run ``python -m tests.support.redis_server --print-url`` for a foreground server.
"""

from __future__ import annotations

import sys

from devtools.embedded_redis import (
    DEFAULT_LOCAL_URL,
    RedisServer,
    RedisServerError,
    find_redis_server,
    free_port,
    main,
    redis_answers,
    resolve_redis_url,
)

__all__ = [
    "DEFAULT_LOCAL_URL",
    "RedisServer",
    "RedisServerError",
    "find_redis_server",
    "free_port",
    "redis_answers",
    "resolve_redis_url",
]

if __name__ == "__main__":
    sys.exit(main())
