"""Clients that misbehave at the HTTP level, over a real socket (issue 21, Medium 4).

A raw socket client against a real uvicorn (:class:`ServiceServer`) and a real
Redis: a body that stops arriving is a 408 after ``HTTP_BODY_TIMEOUT_S``, a
client that goes away mid-body is neither logged as an unhandled error nor
counted as a 500, and ``1e999`` in a body is a 422 naming the field.
"""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from connectus_worker.config import Settings, load_settings
from devtools.service_server import ServiceServer
from tests.support.waiting import wait_for

TOKEN = "it-token-0123456789abcdef"
SECRET = "it-hook-0123456789abcdef"
BODY_TIMEOUT_S = 0.5


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    # redis_client: its fixture deletes every key under the prefix afterwards.
    return load_settings(
        {"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix, "INTAKE_TOKENS": TOKEN,
         "WEBHOOK_SECRET": SECRET, "HTTP_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)}
    )  # fmt: skip


@pytest.fixture
def server(settings: Settings) -> Iterator[ServiceServer]:
    with ServiceServer(settings) as running:
        yield running


def _connect(server: ServiceServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.settimeout(10)  # no read below may hang the test
    return sock


def _head(path: str, length: int, **headers: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {TOKEN}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _requests_by_status(server: ServiceServer, route: str) -> dict[str, float]:
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for labels, value in re.findall(r"^\w*http_requests_total\{([^}]*)\} (\S+)$", text, re.M):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if fields.get("route") == route:
            counts[fields["status"]] = counts.get(fields["status"], 0) + float(value)
    return counts


@pytest.mark.parametrize(
    "path", ["/v1/messages", "/v1/campaigns", f"/webhooks/sms-status?token={SECRET}"]
)
def test_a_body_that_stops_arriving_is_a_408(server: ServiceServer, path: str) -> None:
    with _connect(server) as sock:
        began = time.monotonic()
        sock.sendall(_head(path, 100) + b'{"')  # 2 of the 100 bytes announced
        answer = _read_all(sock)  # the server answers, then closes
        waited = time.monotonic() - began
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"application/problem+json" in rest
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert problem["status"] == 408 and f"{BODY_TIMEOUT_S:g} s" in problem["detail"]
    assert BODY_TIMEOUT_S <= waited < BODY_TIMEOUT_S + 5


def _trickle(server: ServiceServer) -> tuple[bytes, float] | None:
    """Send one body byte every ``BODY_TIMEOUT_S / 5`` until the server answers.

    The answer and the seconds it took; None when the kernel dropped the answer: a
    byte sent just as the server closed is answered with a reset, which discards
    what the client had not read yet (TCP, not the service; checked by a retry).
    """
    with _connect(server) as sock:
        sock.sendall(_head("/v1/messages", 100))
        began = time.monotonic()
        try:
            for _ in range(40):
                # Wait for the answer before sending more: no byte races the close.
                if select.select([sock], [], [], BODY_TIMEOUT_S / 5)[0]:
                    break
                sock.sendall(b" ")
            return _read_all(sock), time.monotonic() - began
        except ConnectionResetError:
            return None


def test_a_trickled_body_is_cut_off_at_the_same_deadline(server: ServiceServer) -> None:
    # One byte at a time keeps each read short; the deadline is for the whole body.
    tried = next((t for t in (_trickle(server) for _ in range(3)) if t is not None), None)
    assert tried is not None, "every try was reset"
    answer, waited = tried
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert waited < BODY_TIMEOUT_S + 5


def test_a_complete_body_is_not_timed_out(server: ServiceServer) -> None:
    body = json.dumps({"type": "sms", "dst_number": "56987688060", "sms_content": "hola"})
    with _connect(server) as sock:
        sock.sendall(_head("/v1/messages", len(body), Connection="close") + body.encode())
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 202"), answer[:300]


def test_a_client_gone_mid_body_is_not_a_500_nor_an_unhandled_error(
    server: ServiceServer, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _requests_by_status(server, "/v1/messages")
    with _connect(server) as sock:
        sock.sendall(_head("/v1/messages", 100) + b'{"type": "sms"')
    # The server learns of it when it next reads: wait for its metrics, no sleep.
    after = wait_for(
        lambda: (counts := _requests_by_status(server, "/v1/messages")).get("499", 0)
        > before.get("499", 0) and counts,
        timeout_s=10, what="the disconnect counted",
    )  # fmt: skip
    assert after.get("500", 0) == before.get("500", 0)
    logged = capsys.readouterr().out
    assert "client disconnected" in logged
    assert "unhandled error" not in logged and "Traceback" not in logged


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/messages",
         '{"type": "sms", "dst_number": "56987688060", "sms_content": "x", "max_age_s": 1e999}',
         "max_age_s"),
        ("/v1/messages",
         '{"type": "sms", "dst_number": "56987688060", "sms_content": "x", "n": [-1E400]}',
         "n[0]"),
        ("/v1/campaigns", '{"name": "x", "recipients": [{"dst_number": 1e999}]}',
         "recipients[0].dst_number"),
        (f"/webhooks/sms-status?token={SECRET}", '{"id_sms": 1e999}', "id_sms"),
    ],
)  # fmt: skip
def test_an_overflowing_number_is_a_422_naming_the_field(
    server: ServiceServer, path: str, body: str, field: str
) -> None:
    with _connect(server) as sock:
        sock.sendall(_head(path, len(body), **{"Idempotency-Key": "inf-key", "Connection": "close"})
                     + body.encode())  # fmt: skip
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 422"), answer[:300]
    problem = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert {p["name"]: p["reason"] for p in problem["invalid-params"]} == {
        field: "must be a finite number (it overflows to infinity)"
    }
