"""The embedded redis-server and the Redis fixtures behave as the chaos tests rely on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.support.redis_namespace import delete_prefix, new_prefix
from tests.support.redis_server import (
    RedisServer,
    RedisServerError,
    free_port,
    redis_answers,
    resolve_redis_url,
)


def test_start_answers_and_stop_releases(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()
    assert redis_answers(server.url)
    client = redis.Redis.from_url(server.url)
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}
    client.close()
    server.stop()
    assert not server.is_running
    assert not redis_answers(server.url)


def test_sigkill_then_restart_with_aof_keeps_acknowledged_writes(
    private_redis: RedisServer,
) -> None:
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    client.set("cw:survivor", "yes")
    client.rpush("cw:queue", "m1", "m2")
    old_pid = private_redis.pid
    private_redis.kill()
    assert not private_redis.is_running
    with pytest.raises(redis.ConnectionError):
        client.ping()
    url = private_redis.restart()
    assert url == private_redis.url
    assert client.connection_pool.connection_kwargs["port"] == private_redis.port  # same port
    assert private_redis.pid != old_pid
    assert client.get("cw:survivor") == "yes"  # the pool reconnects to the same URL
    assert client.lrange("cw:queue", 0, -1) == ["m1", "m2"]
    client.close()


def test_sigkill_without_aof_loses_everything(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    # The control case: proves the previous test would fail without the AOF.
    server = redis_server_factory(appendonly=False)
    client = redis.Redis.from_url(server.url)
    client.set("cw:survivor", "yes")
    server.kill()
    server.restart()
    assert client.get("cw:survivor") is None
    client.close()


def test_a_taken_port_fails_with_the_servers_log(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    first = redis_server_factory()
    clash = RedisServer(first.port, dir=tmp_path, start_timeout_s=5.0)
    try:
        with pytest.raises(RedisServerError, match=f"port {first.port}"):
            clash.start()
    finally:
        clash.close()
    assert redis_answers(first.url)  # the first one is untouched


def test_cli_prints_the_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.redis_server", "--print-url", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # printed only once PING answers
        assert url.startswith("redis://127.0.0.1:")
        assert redis_answers(url)
        process.terminate()
        assert process.wait(timeout=15) == 0
        assert not redis_answers(url)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_redis_client_fixture_is_isolated(redis_client: redis.Redis, redis_prefix: str) -> None:
    assert redis_prefix.startswith("cwtest-")
    assert redis_client.ping()
    redis_client.set(f"{redis_prefix}:k", "v")
    assert redis_client.get(f"{redis_prefix}:k") == "v"


def test_delete_prefix_deletes_only_its_own_keys(redis_client: redis.Redis) -> None:
    mine, other = new_prefix(), new_prefix()
    try:
        for n in range(1_200):  # more than one SCAN/DEL batch
            redis_client.set(f"{mine}:k{n}", n)
        redis_client.set(f"{mine}-dramatiq:default", "q")  # Dramatiq's namespace too
        redis_client.set(f"{other}:k", "keep")
        assert delete_prefix(redis_client, mine) == 1_201
        assert list(redis_client.scan_iter(match=f"{mine}*")) == []
        assert redis_client.get(f"{other}:k") == "keep"
    finally:
        delete_prefix(redis_client, mine)
        delete_prefix(redis_client, other)


@pytest.mark.parametrize("prefix", ["", "*", "cw[1]", "a?"])
def test_delete_prefix_refuses_glob_prefixes(redis_client: redis.Redis, prefix: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        delete_prefix(redis_client, prefix)


def test_resolve_prefers_an_answering_url_and_falls_back_to_embedded(
    private_redis: RedisServer,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    assert resolve_redis_url([None, dead, private_redis.url]) == (private_redis.url, None)
    url, server = resolve_redis_url([dead])
    try:
        assert server is not None
        assert url == server.url != private_redis.url
        assert redis_answers(url)
    finally:
        if server is not None:
            server.close()
    assert not redis_answers(url)
