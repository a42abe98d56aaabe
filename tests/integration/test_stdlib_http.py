"""The stdlib HTTP engine against real sockets, side by side with httpcore.

Every failure case runs on both engines (``CONNECTUS_HTTP_ENGINE``): the
stdlib one must raise the httpx exception httpcore raises at the same moment,
because :mod:`worker.connectus.classify` decides retry or reconcile by that
type alone. The servers are scripted raw sockets on loopback, so each case
(a stale connection, a silent server, a garbled or missing answer, a reset,
a full accept queue, a peer that never reads) happens for real.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from worker.connectus import classify
from worker.connectus.errors import ConnectFailed, ConnectionDropped, ResponseTimeout
from worker.connectus.stdlib_http import StdlibHTTPTransport

ENGINES: dict[str, Callable[..., httpx.BaseTransport]] = {
    "stdlib": StdlibHTTPTransport,
    "httpcore": httpx.HTTPTransport,
}
OK_BODY = b'{"status":"OK"}'
SHORT = {"connect": 1.0, "read": 0.3, "write": 0.3, "pool": 1.0}


class ScriptedServer:
    """Accepts on loopback; each connection runs ``handler(conn, server)`` in a thread."""

    def __init__(self, handler: Callable[[socket.socket, ScriptedServer], None]) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.release = threading.Event()  # set at teardown: silent handlers end
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a client that went away
            self.handler(conn, self)

    def read_request(self, conn: socket.socket) -> bytes | None:
        """One whole request (head and Content-Length body), or None at EOF."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        return head

    def close(self) -> None:
        self.release.set()
        self.listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


def answer(status: str = "200 OK", body: bytes = OK_BODY, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def hold(conn: socket.socket, server: ScriptedServer) -> None:
    """Neither read nor answer until the test ends."""
    server.release.wait(10)


def keep_alive(conn: socket.socket, server: ScriptedServer) -> None:
    while server.read_request(conn) is not None:
        conn.sendall(answer())


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(handler: Callable[[socket.socket, ScriptedServer], None]) -> ScriptedServer:
        servers.append(ScriptedServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Iterator[httpx.BaseTransport]:
    transport = ENGINES[request.param](limits=httpx.Limits(max_connections=1))
    yield transport
    transport.close()


def post(transport: httpx.BaseTransport, url: str, **kwargs: Any) -> httpx.Response:
    timeouts = kwargs.pop("timeout", SHORT)
    request = httpx.Request(
        "POST", url, json={"dst_number": "56982345678"}, extensions={"timeout": timeouts}, **kwargs
    )
    response = transport.handle_request(request)
    response.read()
    return response


def test_keep_alive_round_trips_on_one_connection(serve: Any, engine: Any) -> None:
    server = serve(keep_alive)
    url = f"http://127.0.0.1:{server.port}/api_v3/sms/send_individual?x=1"
    statuses = [post(engine, url).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /api_v3/sms/send_individual?x=1 HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.port}".encode() in first.lower()
    assert first.endswith(b'{"dst_number":"56982345678"}')


def test_answer_body_headers_and_chunked_encoding(serve: Any, engine: Any) -> None:
    def chunked(conn: socket.socket, server: ScriptedServer) -> None:
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nX-Id: 7\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
        )

    server = serve(chunked)
    response = post(engine, f"http://127.0.0.1:{server.port}/")
    assert (response.status_code, response.json(), response.headers["x-id"]) == (202, {"a": 1}, "7")


def test_connection_close_answer_opens_a_new_connection(serve: Any, engine: Any) -> None:
    def one_shot(conn: socket.socket, server: ScriptedServer) -> None:
        server.read_request(conn)
        conn.sendall(answer(close=True))

    server = serve(one_shot)
    url = f"http://127.0.0.1:{server.port}/"
    assert [post(engine, url).status_code for _ in range(2)] == [200, 200]
    assert server.connections == 2


def test_connection_the_server_closed_while_idle_is_not_reused(serve: Any, engine: Any) -> None:
    """A reused dead connection would make a send ambiguous: it is replaced first."""
    closed = threading.Event()

    def answer_then_hang_up(conn: socket.socket, server: ScriptedServer) -> None:
        server.read_request(conn)
        conn.sendall(answer())  # keep-alive, then the server times the idle connection out
        if server.connections == 1:
            conn.shutdown(socket.SHUT_RDWR)
            closed.set()
            return
        keep_alive(conn, server)

    server = serve(answer_then_hang_up)
    url = f"http://127.0.0.1:{server.port}/"
    assert post(engine, url).status_code == 200
    assert closed.wait(5)
    assert post(engine, url).status_code == 200
    assert server.connections == 2


def _then_hang_up(conn: socket.socket, server: ScriptedServer) -> None:
    return None  # the handler returns: the connection is closed


def _then_garble(conn: socket.socket, server: ScriptedServer) -> None:
    conn.sendall(b"HTP/9 what\r\n\r\n")


@pytest.mark.parametrize(
    ("after_request", "raised", "verdict"),
    [
        (hold, httpx.ReadTimeout, ResponseTimeout),
        (_then_hang_up, httpx.RemoteProtocolError, ConnectionDropped),
        (_then_garble, httpx.RemoteProtocolError, ConnectionDropped),
    ],
    ids=["silent_server", "hang_up_without_answer", "garbled_status_line"],
)
def test_what_follows_the_request_decides_the_exception(
    serve: Any,
    engine: Any,
    after_request: Callable[[socket.socket, ScriptedServer], None],
    raised: type[httpx.RequestError],
    verdict: type[Exception],
) -> None:
    def handler(conn: socket.socket, server: ScriptedServer) -> None:
        server.read_request(conn)
        after_request(conn, server)

    server = serve(handler)
    with pytest.raises(raised) as caught:
        post(engine, f"http://127.0.0.1:{server.port}/")
    assert type(caught.value) is raised  # exactly, not a subclass
    assert classify.for_exception(caught.value).error is verdict


def test_reset_in_the_middle_of_the_answer_is_a_dropped_connection(serve: Any, engine: Any) -> None:
    def reset(conn: socket.socket, server: ScriptedServer) -> None:
        server.read_request(conn)
        conn.sendall(answer()[:-5])  # the body is cut short...
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    server = serve(reset)  # ...and closing with linger 0 sends a RST
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as caught:
        post(engine, f"http://127.0.0.1:{server.port}/")
    assert classify.for_exception(caught.value).error is ConnectionDropped


def test_refused_connection_is_a_connect_error(engine: Any) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed on leaving: nothing listens there now
    with pytest.raises(httpx.ConnectError) as caught:
        post(engine, f"http://127.0.0.1:{port}/")
    assert classify.for_exception(caught.value).error is ConnectFailed


def test_full_accept_queue_is_a_connect_timeout(engine: Any) -> None:
    """A listener that never accepts, its backlog filled: the handshake never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):  # Linux admits backlog + 1; the rest of the SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        timeouts = {**SHORT, "connect": 0.3}
        host, port = listener.getsockname()
        with pytest.raises(httpx.ConnectTimeout) as caught:
            post(engine, f"http://{host}:{port}/", timeout=timeouts)
        assert classify.for_exception(caught.value).error is ConnectFailed
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_peer_that_never_reads_is_a_write_timeout(serve: Any, engine: Any) -> None:
    server = serve(hold)
    big = b"x" * (64 * 1024 * 1024)  # far beyond both sockets' buffers
    request = httpx.Request(
        "POST", f"http://127.0.0.1:{server.port}/", content=big, extensions={"timeout": SHORT}
    )
    with pytest.raises(httpx.WriteTimeout) as caught:
        engine.handle_request(request)
    assert classify.for_exception(caught.value).error is ResponseTimeout


def test_unsupported_scheme(engine: Any) -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        post(engine, "ftp://127.0.0.1/")


def test_keep_alive_expiry_drops_an_idle_connection(serve: Any) -> None:
    now = [100.0]
    transport = StdlibHTTPTransport(limits=httpx.Limits(keepalive_expiry=4.0), clock=lambda: now[0])
    server = serve(keep_alive)
    url = f"http://127.0.0.1:{server.port}/"
    try:
        post(transport, url)
        now[0] += 3.9
        post(transport, url)
        assert server.connections == 1
        now[0] += 4.1
        post(transport, url)
        assert server.connections == 2
    finally:
        transport.close()
    assert not transport.connected


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a throwaway certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_with_a_verified_certificate(
    serve: Any, tls_files: tuple[Path, Path], engine: Any
) -> None:
    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    def tls_keep_alive(conn: socket.socket, server: ScriptedServer) -> None:
        with server_context.wrap_socket(conn, server_side=True) as tls:
            keep_alive(tls, server)

    server = serve(tls_keep_alive)
    trusting = ssl.create_default_context(cafile=str(cert))
    transport = type(engine)(verify=trusting, limits=httpx.Limits(max_connections=1))
    untrusting = type(engine)(verify=ssl.create_default_context())
    try:
        url = f"https://localhost:{server.port}/"
        assert json.loads(post(transport, url).content) == {"status": "OK"}
        assert post(transport, url).status_code == 200
        assert server.connections == 1
        with pytest.raises(httpx.ConnectError):  # a certificate nobody vouched for
            post(untrusting, url)
    finally:
        transport.close()
        untrusting.close()
