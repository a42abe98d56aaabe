"""Fixtures of the chaos suite: a stack on a private, killable Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.embedded_redis import RedisServer
from devtools.stack import LocalStack
from tests.chaos.harness import CHAOS_ENV


@pytest.fixture
def killable_stack(
    private_redis: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., LocalStack]]:
    """``make(sandbox_flags=..., env=..., processes=1, threads=1)`` → a started stack whose
    Redis is ``private_redis`` (AOF fsynced on every write: kill and restart it freely)."""
    stacks: list[LocalStack] = []

    def make(**kwargs: Any) -> LocalStack:
        env = {**CHAOS_ENV, **kwargs.pop("env", {})}
        kwargs.setdefault("processes", 1)
        kwargs.setdefault("threads", 1)
        stack = LocalStack(redis_url=private_redis.url, env=env, log_dir=tmp_path, **kwargs)
        stacks.append(stack)
        stack.start()
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            stack.stop(drain=False)  # a drain proves nothing here and costs seconds
