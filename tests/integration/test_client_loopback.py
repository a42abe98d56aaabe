"""The client against scripted loopback servers: deadline, answer cap, proxy.

Two servers httpx's own timeouts cannot stop: one that trickles its answer a
byte every 0.1 s (each wait far below the read timeout), and one that sends
an answer of hundreds of megabytes. The client must give up on the first
within its deadline and on the second within the cap, without reading it all.
And a proxy named by the environment carries the requests (httpx's trust_env).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from connectus_worker.worker.connectus import errors
from connectus_worker.worker.connectus.client import ConnectusClient
from tests.support.connectus import TEST_KEY, TEST_USER
from tests.support.waiting import wait_for

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
HUGE_BYTES = 300 * 1024 * 1024


class LoopbackServer:
    """Accepts connections on 127.0.0.1 and answers each with ``answer(conn)``.

    ``sent`` counts the answer bytes the server managed to write, so a test
    can show the client stopped reading long before the end.
    """

    def __init__(self, answer: Callable[[socket.socket, LoopbackServer], None]) -> None:
        self._answer = answer
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.sent = 0
        self.heads: list[bytes] = []
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._one, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while b"\r\n\r\n" not in buffer:  # the request's head
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            self.heads.append(buffer.split(b"\r\n\r\n")[0])
            # OSError: the client hung up, which is what the tests expect.
            with contextlib.suppress(OSError):
                self._answer(conn, self)

    def close(self) -> None:
        self.stop.set()
        self._sock.close()
        for thread in self._threads:
            thread.join(5)


def trickle(body: bytes, step: int) -> Callable[[socket.socket, LoopbackServer], None]:
    """A valid answer, ``step`` bytes of ``body`` every 0.1 s."""

    def answer(conn: socket.socket, server: LoopbackServer) -> None:
        conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), step):
            if server.stop.wait(0.1):
                return
            conn.sendall(body[start : start + step])
            server.sent += step

    return answer


SENT = b'{"status": "ESME_ROK", "id": "ab"}'
# A byte every 0.1 s: 17 s for the whole answer.
SLOW = trickle(b'{"status": "ESME_ROK", "id": "' + b"a" * 128 + b'"}', 1)


def huge(conn: socket.socket, server: LoopbackServer) -> None:
    """A 300 MB chunked answer (no Content-Length to refuse it by)."""
    chunk = b"[" + b" " * (1024 * 1024 - 2) + b"]"
    conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
    while server.sent < HUGE_BYTES and not server.stop.is_set():
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        server.sent += len(chunk)
    conn.sendall(b"0\r\n\r\n")


def declared_huge(conn: socket.socket, server: LoopbackServer) -> None:
    """An answer declaring 300 MB, then sending its bytes slowly."""
    conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % HUGE_BYTES)
    while not server.stop.wait(0.05):
        conn.sendall(b" " * 1024)
        server.sent += 1024


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def start(answer: Callable[[socket.socket, LoopbackServer], None]) -> LoopbackServer:
        servers.append(LoopbackServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(server: LoopbackServer, **overrides: float) -> ConnectusClient:
    settings = {
        "api_user": TEST_USER,
        "api_key": TEST_KEY,
        "base_url": server.url,
        "v1_base_url": server.url,
        "qr_base_url": server.url,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 5.0,
        **overrides,
    }
    return ConnectusClient(**settings)  # type: ignore[arg-type]


def test_a_trickling_answer_is_cut_off_at_the_deadline(
    serve: Callable[..., LoopbackServer],
) -> None:
    server = serve(SLOW)
    with client_for(server, deadline_s=1.0) as client:
        started = time.monotonic()
        with pytest.raises(errors.ResponseTimeout) as raised:
            client.v3.send_sms(dst_number="56987688060", sms_content="hola")
        took = time.monotonic() - started
    assert raised.value.reason == "deadline_exceeded"
    assert raised.value.outcome == "ambiguous"  # the request went out: reconcile it
    assert "within 1.0 s" in str(raised.value)
    # Past the deadline by one trickled byte at most, far below the 5 s read timeout.
    assert 1.0 <= took < 1.6
    assert server.sent < 20


def test_a_trickling_answer_within_the_deadline_is_read(
    serve: Callable[..., LoopbackServer],
) -> None:
    server = serve(trickle(SENT, 4))  # 0.9 s for the whole answer
    with client_for(server, deadline_s=10.0, read_timeout_s=1.0) as client:
        result = client.v3.send_sms(dst_number="56987688060", sms_content="hola")
    assert result.provider_id == "ab"
    # The server counts a chunk after sendall returns, which can be after the client
    # has read it: wait for the count rather than race it.
    wait_for(lambda: server.sent >= len(SENT), timeout_s=5, what="the whole answer trickled")


def test_a_huge_chunked_answer_is_refused_without_reading_it_all(
    serve: Callable[..., LoopbackServer],
) -> None:
    server = serve(huge)
    with client_for(server, max_response_bytes=4 * 1024 * 1024) as client:
        started = time.monotonic()
        with pytest.raises(errors.MalformedResponse) as raised:
            client.v3.send_sms(dst_number="56987688060", sms_content="hola")
        took = time.monotonic() - started
    assert raised.value.reason == "response_too_large"
    assert raised.value.status_code == 200
    assert "larger than 4194304 bytes" in str(raised.value)
    assert took < 5
    # The server got no further than the cap plus what the socket buffers held.
    assert server.sent < HUGE_BYTES // 4


def test_a_listing_may_be_larger_than_a_send_answer(
    serve: Callable[..., LoopbackServer],
) -> None:
    server = serve(huge)
    limits = {"max_response_bytes": 1024 * 1024, "max_listing_bytes": 8 * 1024 * 1024}
    with client_for(server, **limits) as client, pytest.raises(errors.MalformedResponse) as raised:
        client.v3.sms_date_report(begin_date="2026-01-01", end_date="2026-01-02")
    assert "larger than 8388608 bytes" in str(raised.value)
    assert server.sent > 8 * 1024 * 1024  # it read past the send answers' cap


def test_a_declared_length_above_the_cap_is_refused_before_the_body(
    serve: Callable[..., LoopbackServer],
) -> None:
    server = serve(declared_huge)
    with client_for(server) as client, pytest.raises(errors.MalformedResponse) as raised:
        client.v3.send_sms(dst_number="56987688060", sms_content="hola")
    assert raised.value.reason == "response_too_large"
    assert server.sent <= 2 * 1024


def test_a_proxy_named_by_the_environment_carries_the_request(
    serve: Callable[..., LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(conn: socket.socket, server: LoopbackServer) -> None:
        conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(SENT), SENT))

    proxy = serve(answer)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    client = ConnectusClient(
        api_user=TEST_USER, api_key=TEST_KEY, base_url="http://connectus.invalid",
        v1_base_url="http://connectus.invalid", qr_base_url="http://connectus.invalid",
        connect_timeout_s=2.0, read_timeout_s=2.0,
    )  # fmt: skip
    with client:
        result = client.v3.send_sms(dst_number="56987688060", sms_content="hola")
    assert result.provider_id == "ab"
    # The absolute form a proxy is sent: the client never resolved the host itself.
    lines = proxy.heads[0].split(b"\r\n")
    assert lines[0] == b"POST http://connectus.invalid/api_v3/sms/send_individual HTTP/1.1"
    assert b"Host: connectus.invalid" in lines


class KeepAliveServer:
    """Answers every request with a send answer, keeping each connection open.

    ``opened`` counts connections accepted, ``closed`` those the client closed.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.opened = 0
        self.closed = 0
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.opened += 1
            thread = threading.Thread(target=self._one, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _one(self, conn: socket.socket) -> None:
        buffer = b""
        with conn, contextlib.suppress(OSError):
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        self.closed += 1
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(SENT), SENT))

    def close(self) -> None:
        self._sock.close()
        for thread in self._threads:
            thread.join(5)


def test_each_thread_keeps_its_own_connection_and_close_ends_them_all() -> None:
    server = KeepAliveServer()
    client = ConnectusClient(
        api_user=TEST_USER, api_key=TEST_KEY, base_url=server.url, v1_base_url=server.url,
        qr_base_url=server.url, connect_timeout_s=2.0, read_timeout_s=2.0,
    )  # fmt: skip

    def sends() -> None:
        for _ in range(3):
            client.v3.send_sms(dst_number="56987688060", sms_content="hola")

    try:
        sends()
        assert server.opened == 1  # three sends, one kept-alive connection
        # Threads one after another: each opens its own, none waits on another's.
        for _ in range(2):
            thread = threading.Thread(target=sends)
            thread.start()
            thread.join(10)
        assert server.opened == 3
        client.close()
        wait_for(lambda: server.closed == 3, timeout_s=5, what="every connection closed")
        with pytest.raises(RuntimeError):
            sends()
    finally:
        client.close()
        server.close()


BALANCE = b'{"balance": 1}'


def trickled_head_second(conn: socket.socket, server: LoopbackServer) -> None:
    """The first answer whole; on the same connection, the second's head a byte per 0.1 s."""
    conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(BALANCE), BALANCE))
    buffer = b""
    while b"\r\n\r\n" not in buffer:  # the second request (a GET: no body)
        data = conn.recv(65536)
        if not data:
            return
        buffer += data
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
    for _ in range(40):  # 4 s: then a whole answer, which a client without a deadline takes
        if server.stop.wait(0.1):
            return
        conn.sendall(b"a")
        server.sent += 1
    conn.sendall(b"\r\nContent-Length: %d\r\n\r\n%s" % (len(BALANCE), BALANCE))


def test_a_trickling_head_is_cut_off_at_the_deadline_on_a_kept_alive_connection(
    serve: Callable[..., LoopbackServer],
) -> None:
    server = serve(trickled_head_second)
    with client_for(server, deadline_s=1.0, read_timeout_s=5.0) as client:
        assert client.v1.check_balance() == 1
        started = time.monotonic()
        with pytest.raises(errors.ResponseTimeout) as raised:
            client.v1.check_balance()
        took = time.monotonic() - started
    assert raised.value.reason == "deadline_exceeded"
    assert len(server.heads) == 1  # one connection, kept alive for the second request
    # httpx alone would wait for the whole head: each byte is well within the read timeout.
    assert 1.0 <= took < 1.6
    assert server.sent >= 5
