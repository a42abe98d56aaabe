"""A whole local system per test: real Redis, the sandbox and workers as processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.redis_namespace import delete_prefix, new_prefix
from tests.support.stack_checks import CAMPAIGN_ENV, FAST


@pytest.fixture
def make_stack(
    redis_url: str, redis_prefix: str, redis_client: Any, tmp_path: Path
) -> Iterator[Callable[..., LocalStack]]:
    """``make_stack(sandbox_flags=..., processes=1, threads=4, env=...)`` → a started stack."""
    stacks: list[LocalStack] = []

    def make(**kwargs: Any) -> LocalStack:
        env = {**FAST, "KEY_PREFIX": redis_prefix, **kwargs.pop("env", {})}
        kwargs.setdefault("processes", 1)
        kwargs.setdefault("threads", 4)
        stack = LocalStack(redis_url=redis_url, env=env, log_dir=tmp_path, **kwargs)
        stacks.append(stack)
        stack.start()
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            stack.stop(drain=False)  # a drain proves nothing here and costs seconds


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    return make_stack()


@pytest.fixture
def producer(stack: LocalStack) -> Producer:
    return Producer(stack.settings)


@pytest.fixture(scope="module")
def campaign_stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """One campaign stack (``CAMPAIGN_ENV``, default sandbox) shared by a module's tests.

    Starting a stack costs seconds; tests that need no flags of their own share one.
    Each sends to numbers (or addresses) of its own and judges only the charges to
    those, so what another test sent before it changes nothing. Its own key prefix
    is deleted at the end, as ``redis_client`` does for one test.
    """
    prefix = new_prefix()
    stack = LocalStack(redis_url=redis_url, env={**FAST, **CAMPAIGN_ENV, "KEY_PREFIX": prefix},
                       processes=1, threads=4, log_dir=tmp_path_factory.mktemp("campaign-stack"))  # fmt: skip
    try:
        stack.start()
        yield stack
    finally:
        stack.stop(drain=False)
        client = redis.Redis.from_url(redis_url)
        try:
            delete_prefix(client, prefix)
        finally:
            client.close()
