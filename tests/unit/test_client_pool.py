"""The client's connection pool: single-connection httpx clients lent one request at a time."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from worker.connectus import errors
from worker.connectus.qr import QrApi
from worker.connectus.testing import TEST_KEY, TEST_USER
from worker.connectus.transport import Transport
from worker.connectus.v3 import V3Api

OK = {"status": "ESME_ROK", "id": "p-1"}


def make_transport(**overrides: Any) -> Transport:
    options: dict[str, Any] = {
        "api_user": TEST_USER,
        "api_key": TEST_KEY,
        "connect_timeout_s": 3.0,
        "read_timeout_s": 10.0,
        "write_timeout_s": 5.0,
        "pool_timeout_s": 3.0,
        "pool_size": 100,
        "keepalive_expiry_s": 4.0,
        "user_agent": "pool-test",
    }
    return Transport(**(options | overrides))


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Transport, list[Any]]]:
    """A transport on the real pool path (no injected transport), each pooled
    client's own per-connection transport answering through ``handler``."""

    made: list[Any] = []
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)

    def build(
        handler: Callable[[httpx.Request], httpx.Response], **overrides: Any
    ) -> tuple[Transport, list[Any]]:
        def per_connection(**options: Any) -> httpx.BaseTransport:
            made.append(options)
            return httpx.MockTransport(handler)

        return make_transport(make_http_transport=per_connection, **overrides), made

    return build


def send(transport: Transport) -> Any:
    return V3Api(transport, "https://plataforma.test").send_sms(
        dst_number="56987688060", sms_content="hola"
    )


def test_sequential_requests_reuse_one_single_connection_client(
    pooled: Callable[..., tuple[Transport, list[Any]]],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK)

    transport, made = pooled(handler)
    for _ in range(5):
        assert send(transport).provider_id == "p-1"
    assert len(made) == 1 and transport.clients == 1
    assert made[0]["limits"].max_connections == 1
    assert transport.direct
    token = base64.b64encode(f"{TEST_USER}:{TEST_KEY}".encode()).decode()
    assert seen[-1].headers["authorization"] == f"Basic {token}"
    assert seen[-1].headers["accept"] == "application/json"
    assert seen[-1].extensions["timeout"] == {"connect": 3.0, "read": 10.0, "write": 5.0,
                                              "pool": 3.0}  # fmt: skip


def test_concurrent_requests_get_their_own_clients_up_to_pool_size_then_wait(
    pooled: Callable[..., tuple[Transport, list[Any]]],
) -> None:
    release = threading.Event()
    inside = threading.Semaphore(0)

    def handler(request: httpx.Request) -> httpx.Response:
        inside.release()
        release.wait(5)
        return httpx.Response(200, json=OK)

    transport, made = pooled(handler, pool_size=2, pool_timeout_s=0.2)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(send(transport))) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert inside.acquire(timeout=5) and inside.acquire(timeout=5)
    # Both connections are lent: a third request waits, then fails before sending.
    with pytest.raises(errors.ConnectFailed) as raised:
        send(transport)
    assert raised.value.reason == "pool_timeout"
    assert isinstance(raised.value.__cause__, httpx.PoolTimeout)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(results) == 2 and len(made) == 2
    assert send(transport).provider_id == "p-1" and len(made) == 2  # a returned one is reused


def test_close_closes_every_client_and_refuses_later_calls(
    pooled: Callable[..., tuple[Transport, list[Any]]],
) -> None:
    transport, _ = pooled(lambda request: httpx.Response(200, json=OK))
    send(transport)
    pool = list(transport._every)
    transport.close()
    assert transport.closed and all(p.client.is_closed for p in pool)
    with pytest.raises(RuntimeError):
        send(transport)


def test_qr_bearer_token_still_replaces_basic_auth(
    pooled: Callable[..., tuple[Transport, list[Any]]],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "CONNECTED"})

    transport, _ = pooled(handler, bearer_token="tok-1")
    QrApi(transport, "https://whatsappqr.test").status()
    assert seen[-1].headers["authorization"] == "Bearer tok-1"


def test_with_a_proxy_in_the_environment_requests_go_through_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    seen: list[dict[str, Any]] = []

    def per_connection(**options: Any) -> httpx.BaseTransport:
        raise AssertionError("a transport of ours would bypass the proxy")

    def client(**options: Any) -> httpx.Client:
        seen.append(options)
        options.pop("verify")
        return httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=OK)),
                            **options)  # fmt: skip

    transport = make_transport(make_http_client=client, make_http_transport=per_connection)
    assert not transport.direct
    assert send(transport).provider_id == "p-1"
    # Built without a transport of ours, so httpx.Client applies the proxy.
    assert "transport" not in seen[0] and seen[0]["follow_redirects"] is False


def test_parsed_urls_are_kept_per_string_up_to_a_bound_and_never_mixed_up(
    pooled: Callable[..., tuple[Transport, list[Any]]],
) -> None:
    from worker.connectus.requests_direct import URL_CACHE_SIZE

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ok": True})

    transport, _ = pooled(handler)
    urls = [f"https://plataforma.test/api_v3/sms/{i}" for i in range(URL_CACHE_SIZE + 20)]
    for url in urls + urls[:3]:
        transport.call("GET", url, lambda body: body, params={"dst": "56987688060"})
    assert seen == [f"{url}?dst=56987688060" for url in urls + urls[:3]]
    assert len(transport._urls) == URL_CACHE_SIZE
    # The kept URL objects carry no query: params are merged per request.
    assert all(not parsed.query for parsed in transport._urls.values())
