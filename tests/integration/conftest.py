"""A whole local system per test: real Redis, the sandbox and workers as processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.stack import LocalStack
from producers.api import Producer

# Fast durable retries, so tests see several attempts in seconds.
FAST = {
    "RETRY_INITIAL_BACKOFF_MS": "20",
    "RETRY_MAX_BACKOFF_MS": "100",
    "DURABLE_MIN_BACKOFF_MS": "200",
    "DURABLE_MAX_BACKOFF_MS": "1000",
    "BROKER_MAINTENANCE_INTERVAL_S": "1",
    "WORKER_SHUTDOWN_GRACE_S": "10",
    # Short breaker cool-downs and generous rates: these tests are about
    # delivery; the breaker and the limiter have tests of their own.
    "BREAKER_OPEN_S": "1",
    "BREAKER_MAX_OPEN_S": "2",
    "RATE_SMS_PER_S": "500",
    "RATE_SMS_BURST": "100",
    "RATE_MIN_PER_S": "5",
}


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
            stack.stop()


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    return make_stack()


@pytest.fixture
def producer(stack: LocalStack) -> Producer:
    return Producer(stack.settings)
