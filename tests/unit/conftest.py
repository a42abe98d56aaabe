"""Unit tests never touch the network.

Every ``connect``/``connect_ex`` on a non-AF_UNIX socket raises
:class:`NetworkAccessInUnitTest` and is recorded; a recorded attempt fails
the test at teardown even if a library caught the exception and retried.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest

from connectus_worker.config import load_settings
from connectus_worker.producers.api import Producer
from tests.support.clock import Clock
from tests.support.network_guard import NetworkAccessInUnitTest, NetworkGuard


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family != socket.AF_UNIX:
            guard.attempts.append(repr(address))
            raise NetworkAccessInUnitTest(f"unit test tried to connect to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    if guard.attempts:
        pytest.fail(f"unit test opened network connections: {guard.attempts}", pytrace=False)


@pytest.fixture
def clock() -> Clock:
    """A manual clock (epoch ms) for the job store and everything built on it."""
    return Clock()


@pytest.fixture
def producer(clock: Clock) -> Producer:
    """A producer on a fresh fakeredis with default settings and the manual clock."""
    return Producer(load_settings({}), redis_client=fakeredis.FakeRedis(), clock=clock)
