"""The guard in tests/unit/conftest.py really stops network access."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from tests.support.network_guard import NetworkAccessInUnitTest, NetworkGuard


def test_tcp_connect_is_refused_and_recorded(network_guard: NetworkGuard) -> None:
    with pytest.raises(NetworkAccessInUnitTest):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert network_guard.attempts == ["('127.0.0.1', 9)"]
    network_guard.attempts.clear()  # expected here; would otherwise fail the test


def test_connect_ex_is_refused(network_guard: NetworkGuard) -> None:
    with (
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkAccessInUnitTest),
    ):
        sock.connect_ex(("::1", 9))
    network_guard.attempts.clear()


def test_unix_sockets_are_allowed(network_guard: NetworkGuard) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "missing.sock")
        with socket.socket(socket.AF_UNIX) as sock, pytest.raises(FileNotFoundError):
            sock.connect(path)  # reaches the real connect: the file does not exist
    assert network_guard.attempts == []
