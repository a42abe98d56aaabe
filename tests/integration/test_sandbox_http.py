"""The sandbox over real HTTP: uvicorn on a loopback port, webhooks to a real receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sandbox.config import FaultConfig, SandboxConfig
from sandbox.server import SandboxServer

AUTH = ("sandbox", "sandbox-key")
WAIT_S = 10.0
SMS = {"dst_number": "56987688060", "sms_content": "hola"}


class Receiver:
    """A webhook receiver; ``fail_first`` answers 500 to that many POSTs first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.attempts: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                payload = json.loads(self.rfile.read(length))
                with receiver.cond:
                    receiver.attempts.append(payload)
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1
                    if not failing:
                        receiver.posts.append((self.path, payload))
                        receiver.cond.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.posts) >= count, timeout=WAIT_S)
            assert ok, f"only {len(self.posts)} webhooks arrived: {self.posts}"
            return list(self.posts)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_status_webhooks_are_posted_on_every_change(receiver: Receiver) -> None:
    config = SandboxConfig(
        step_delay_s=0.01,
        tick_interval_s=0.005,
        sms_status_hook_url=receiver.url + "/status",
        webhook_concurrency=1,  # one sender keeps this test's order deterministic
    )
    with SandboxServer(config) as server, httpx.Client(base_url=server.base_url, auth=AUTH) as c:
        sms = c.post("/api_v3/sms/send_individual", json=SMS).json()
        posts = receiver.wait_for(3)
        record = c.get(f"/api_v3/sms/{sms['id']}").json()
    assert posts == [
        ("/status", {"id_sms": sms["id"], "status": "EN_COLA"}),
        ("/status", {"id_sms": sms["id"], "status": "ENVIADO_A_CARRIER"}),
        ("/status", {"id_sms": sms["id"], "status": "ENTREGADO"}),
    ]
    assert record["status"] == "DELIVRD"


def test_incoming_sms_webhook(receiver: Receiver) -> None:
    with SandboxServer() as server, httpx.Client(base_url=server.base_url) as c:
        put = c.put("/_sandbox/account", json={"sms_incoming_hook_url": receiver.url + "/in"})
        sent = c.post(
            "/_sandbox/incoming_sms", json={"src_number": "56990324203", "sms_content": "Hola"}
        ).json()
        posts = receiver.wait_for(1)
    assert put.json()["sms_incoming_hook_url"] == receiver.url + "/in"
    path, payload = posts[0]
    assert path == "/in"
    assert payload["id_sms"] == sent["id_sms"]
    assert payload["sms_content_binary"] == "486f6c61"


def test_failed_webhooks_are_retried(receiver: Receiver) -> None:
    receiver.fail_first = 2
    config = SandboxConfig(sms_incoming_hook_url=receiver.url + "/in", webhook_backoff_s=0.01)
    with SandboxServer(config) as server, httpx.Client(base_url=server.base_url) as c:
        c.post("/_sandbox/incoming_sms", json={"src_number": "56990324203", "sms_content": "x"})
        receiver.wait_for(1)
        # Both failures were counted before the third attempt was even queued.
        stats = c.get("/_sandbox/stats").json()["webhooks"]
    assert len(receiver.attempts) == 3
    assert receiver.attempts[0] == receiver.attempts[2]
    assert stats["failed_attempts"] == 2
    assert stats["gave_up"] == 0


def test_dropped_after_accept_is_a_connection_error_and_a_charge() -> None:
    config = SandboxConfig(faults=FaultConfig(drop_rate=1.0))
    with SandboxServer(config) as server, httpx.Client(base_url=server.base_url, auth=AUTH) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/api_v3/sms/send_individual", json=SMS)
        ledger = c.get("/_sandbox/ledger").json()
        # Reconciliation: the charged message is there although the client never saw its id.
        found = c.get(f"/api_v3/sms/{ledger['charges'][0]['provider_id']}")
    assert ledger["total"] == 1
    assert ledger["charges"][0]["dst"] == "56987688060"
    assert found.status_code == 200


def test_429_over_http_has_retry_after_and_lookups_stay_reliable() -> None:
    config = SandboxConfig(faults=FaultConfig(rate_429=1.0, retry_after_s=3))
    with SandboxServer(config) as server, httpx.Client(base_url=server.base_url, auth=AUTH) as c:
        limited = c.post("/api_v3/sms/send_individual", json=SMS)
        lookup = c.get("/api_v3/account")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert lookup.status_code == 200


def test_two_servers_bind_distinct_ports() -> None:
    with SandboxServer() as a, SandboxServer() as b:
        assert a.port != b.port
        assert httpx.get(a.base_url + "/_sandbox/health").status_code == 200
        assert httpx.get(b.base_url + "/_sandbox/health").status_code == 200


def test_a_port_in_use_fails_start_up_naming_the_server() -> None:
    with SandboxServer() as running:
        server = SandboxServer(port=running.port)
        with pytest.raises(RuntimeError, match=r"sandbox did not start: SystemExit"):
            server.start()
