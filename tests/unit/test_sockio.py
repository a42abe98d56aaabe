"""worker.connectus.sockio: a non-blocking socket read and written with timeouts.

Each test runs on a socketpair whose reading end is non-blocking, as the
stdlib engine keeps its connection.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from worker.connectus.sockio import CHUNK, SocketReader, send_all


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    b.settimeout(0.0)
    with a, b:
        yield a, b


def test_readline_across_several_receives_and_at_the_end(pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    long_line = b"x" * (CHUNK + 100) + b"\n"  # more than one recv can return
    a.sendall(long_line + b"second\nrest")
    a.shutdown(socket.SHUT_WR)
    reader = SocketReader(b, timeout_s=2)
    assert reader.readline(10 * CHUNK) == long_line
    assert reader.readline(100) == b"second\n"
    assert reader.readline(100) == b"rest"  # the end of the stream ends the line
    assert reader.readline(100) == b""


def test_readline_stops_at_its_limit(pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    a.sendall(b"0123456789\n")
    reader = SocketReader(b, timeout_s=2)
    assert reader.readline(4) == b"0123"
    assert reader.readline(100) == b"456789\n"


def test_read_exact_short_and_to_the_end(pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    a.sendall(b"abcdefgh")
    a.shutdown(socket.SHUT_WR)
    reader = SocketReader(b, timeout_s=2)
    assert reader.read(3) == b"abc"
    assert reader.read(-1) == b"defgh"
    assert reader.read(5) == b""  # past the end: fewer than asked, none here


def test_a_silent_peer_times_out_and_the_error_is_the_builtin(
    pair: tuple[socket.socket, ...],
) -> None:
    a, b = pair
    a.sendall(b"HTTP/1.1 200 OK\r\n")  # a line, then nothing
    reader = SocketReader(b, timeout_s=0.05)
    assert reader.readline(100) == b"HTTP/1.1 200 OK\r\n"
    with pytest.raises(TimeoutError):
        reader.readline(100)


def test_a_lent_poller_is_used(pair: tuple[socket.socket, ...]) -> None:
    import select

    a, b = pair
    calls: list[int | None] = []
    inner = select.poll()
    inner.register(b, select.POLLIN)

    class Counting:
        def poll(self, timeout_ms: int | None = None) -> list[tuple[int, int]]:
            calls.append(timeout_ms)
            return inner.poll(timeout_ms)

    a.sendall(b"line\n")
    assert SocketReader(b, timeout_s=1.5, poller=Counting()).readline(100) == b"line\n"
    assert calls == [1500]  # milliseconds, the whole timeout for the first wait


def test_send_all_writes_more_than_the_socket_buffer_holds(
    pair: tuple[socket.socket, ...],
) -> None:
    a, b = pair
    data = bytes(range(256)) * 8192  # 2 MiB: many partial sends and waits
    received = bytearray()

    def drain() -> None:
        while chunk := a.recv(1 << 16):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    send_all(b, data, timeout_s=5)
    b.shutdown(socket.SHUT_WR)
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert bytes(received) == data


def test_send_all_to_a_peer_that_never_reads_times_out(pair: tuple[socket.socket, ...]) -> None:
    _, b = pair
    with pytest.raises(TimeoutError):
        send_all(b, b"x" * (16 << 20), timeout_s=0.05)
