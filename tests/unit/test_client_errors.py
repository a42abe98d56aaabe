"""The client's boundary: exception mapping (with __cause__), timeouts, pooling, secrets."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectus_worker.worker.connectus import errors
from connectus_worker.worker.connectus.client import ConnectusClient
from tests.support.connectus import TEST_KEY, TEST_USER, make_client

TOKEN = base64.b64encode(f"{TEST_USER}:{TEST_KEY}".encode()).decode()


def send(client: ConnectusClient) -> Any:
    return client.v3.send_sms(dst_number="56987688060", sms_content="hola")


def raising(kind: type[httpx.RequestError]) -> Callable[[httpx.Request], Exception]:
    return lambda request: kind("boom", request=request)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (httpx.ConnectError, errors.ConnectFailed),
        (httpx.ConnectTimeout, errors.ConnectFailed),
        (httpx.PoolTimeout, errors.ConnectFailed),
        (httpx.ReadTimeout, errors.ResponseTimeout),
        (httpx.WriteTimeout, errors.ResponseTimeout),
        (httpx.WriteError, errors.ConnectionDropped),
        (httpx.ReadError, errors.ConnectionDropped),
        (httpx.RemoteProtocolError, errors.ConnectionDropped),
    ],
)
def test_transport_failures_are_mapped_with_their_cause(
    kind: type[httpx.RequestError], expected: type[errors.ConnectusError]
) -> None:
    client, _ = make_client(raising(kind))
    with pytest.raises(expected) as raised:
        send(client)
    assert type(raised.value.__cause__) is kind
    assert raised.value.status_code is None
    assert (
        raised.value.reason
        == {
            httpx.ConnectError: "connect_error",
            httpx.ConnectTimeout: "connect_timeout",
            httpx.PoolTimeout: "pool_timeout",
            httpx.ReadTimeout: "read_timeout",
            httpx.WriteTimeout: "write_timeout",
            httpx.WriteError: "write_error",
            httpx.ReadError: "read_error",
            httpx.RemoteProtocolError: "remote_protocol_error",
        }[kind]
    )


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retry_after_s"),
    [
        (429, {"error": "Too many requests"}, {"Retry-After": "3"}, errors.RateLimited, 3.0),
        (429, {"error": "Too many requests"}, {}, errors.RateLimited, None),
        (503, None, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
         errors.ServiceUnavailable, 0.0),
        (502, None, {}, errors.ServiceUnavailable, None),
        (500, {"error": "oops"}, {}, errors.AmbiguousServerError, None),
        (504, None, {}, errors.AmbiguousServerError, None),
        (400, {"error": "bad", "field": "sms_content"}, {}, errors.InvalidRequest, None),
        (400, {"error": "bad", "field": "dst_number"}, {}, errors.InvalidNumber, None),
        (404, {"error": "Not found"}, {}, errors.NotFound, None),
        (401, {"error": "Invalid API key"}, {}, errors.AuthenticationFailed, None),
        (403, None, {}, errors.AuthenticationFailed, None),
        (402, {"error": "Insufficient balance", "product": "sms"}, {},
         errors.BalanceExhausted, None),
        (301, None, {"Location": "https://elsewhere"}, errors.InvalidRequest, None),
    ],
)  # fmt: skip
def test_http_statuses_are_mapped(
    status: int,
    body: Any,
    headers: dict[str, str],
    expected: type[errors.ConnectusError],
    retry_after_s: float | None,
) -> None:
    response = (
        httpx.Response(status, json=body, headers=headers)
        if body is not None
        else httpx.Response(status, text="<html>gateway</html>", headers=headers)
    )
    client, recorder = make_client(response)
    with pytest.raises(expected) as raised:
        send(client)
    assert type(raised.value) is expected
    assert raised.value.status_code == status
    cause = raised.value.__cause__
    assert isinstance(cause, httpx.HTTPStatusError)
    assert cause.response.status_code == status
    assert raised.value.retry_after_s == retry_after_s
    assert len(recorder.requests) == 1  # no redirect followed, no hidden retry
    if isinstance(body, dict) and "error" in body:
        assert body["error"] in str(raised.value)


@pytest.mark.parametrize(
    ("response", "cause"),
    [
        (httpx.Response(200, text="<html>ok</html>"), json.JSONDecodeError),
        (httpx.Response(200, content=b""), json.JSONDecodeError),
        (httpx.Response(200, content=b"\xff\xfe\x00garbage"), ValueError),
        (httpx.Response(200, json={"error": "algo falló"}), None),
        (httpx.Response(200, json=["ESME_ROK"]), None),
    ],
    ids=["html", "empty", "undecodable", "error-text-no-id", "not-an-object"],
)
def test_unusable_2xx_answers_are_malformed(
    response: httpx.Response, cause: type[Exception] | None
) -> None:
    client, _ = make_client(response)
    with pytest.raises(errors.MalformedResponse) as raised:
        send(client)
    assert raised.value.outcome == "ambiguous"
    if cause is None:
        assert raised.value.__cause__ is None
    else:
        assert isinstance(raised.value.__cause__, cause)


def test_long_error_texts_are_cut_short() -> None:
    client, _ = make_client(httpx.Response(400, json={"error": "x" * 5000}))
    with pytest.raises(errors.InvalidRequest) as raised:
        send(client)
    assert len(str(raised.value)) < 300


def test_query_strings_stay_out_of_error_messages() -> None:
    client, _ = make_client(raising(httpx.ReadTimeout))
    with pytest.raises(errors.ResponseTimeout) as raised:
        client.v3.whatsapp_messages(src_number="56999944837", dst_number="56987688060")
    assert "56987688060" not in str(raised.value)
    assert "/api_v3/whatsapp/messages" in str(raised.value)


# --- secrets -------------------------------------------------------------------
def _all_text(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(exc))]
    while exc is not None:
        parts += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return "\n".join(parts)


@pytest.mark.parametrize(
    "answer",
    [
        raising(httpx.ReadTimeout),
        raising(httpx.ConnectError),
        httpx.Response(401, json={"error": f"Invalid API key {TEST_KEY} for {TOKEN}"}),
        httpx.Response(200, json={"status": "ESME_RTHROTTLED", "error": f"k={TEST_KEY}"}),
        httpx.Response(200, text=f"<p>{TEST_KEY}</p>"),
    ],
    ids=["read-timeout", "connect-error", "echoed-in-401", "echoed-in-2xx", "html"],
)
def test_the_key_never_appears_in_exceptions_or_logs(
    answer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = make_client(answer)
    with pytest.raises(errors.ConnectusError) as raised:
        send(client)
    text = _all_text(raised.value) + caplog.text
    assert TEST_KEY not in text
    assert TOKEN not in text


def test_the_key_never_appears_in_reprs() -> None:
    client, _ = make_client(httpx.Response(200, json={}))
    shown = [repr(client), str(client), repr(client.v3), repr(client.v1), repr(client.qr)]
    # Whatever the client holds (its transport and pool too), as a traceback's locals show it.
    shown.append(repr(vars(client)))
    assert all(TEST_KEY not in s and TOKEN not in s for s in shown)
    assert "api_key='***'" in repr(client)
    assert TEST_USER in repr(client)


def test_bad_construction_does_not_echo_the_key() -> None:
    with pytest.raises(ValueError) as raised:
        make_client(httpx.Response(200), connect_timeout_s=0)
    assert TEST_KEY not in str(raised.value)


# --- timeouts, pool, lifecycle ---------------------------------------------------
def test_timeouts_are_configured_on_every_request() -> None:
    client, recorder = make_client(
        httpx.Response(200, json={"balance": 1}),
        connect_timeout_s=1.5,
        read_timeout_s=7.0,
        write_timeout_s=2.5,
    )
    client.v1.check_balance()
    assert recorder.last.extensions["timeout"] == {
        "connect": 1.5,
        "read": 7.0,
        "write": 2.5,
        "pool": 1.5,  # the connect timeout (a thread's client never waits for one)
    }
    assert client.timeout == httpx.Timeout(connect=1.5, read=7.0, write=2.5, pool=1.5)


def test_one_pool_serves_all_three_apis() -> None:
    client, recorder = make_client(httpx.Response(200, json={"balance": 1, "status": "x"}))
    client.v3.email_balance()
    client.v1.check_balance()
    client.qr.status()
    hosts = [r.url.host for r in recorder.requests]
    assert hosts == ["plataforma.test", "api.test", "whatsappqr.test"]
    # One pool: closing the client closes it for every API.
    client.close()
    for call in (client.v3.email_balance, client.v1.check_balance, client.qr.status):
        with pytest.raises(RuntimeError):
            call()


def test_context_manager_closes_the_pool() -> None:
    client, _ = make_client(httpx.Response(200, json={"balance": 1}))
    with client as entered:
        assert entered is client
        assert not client.closed
    assert client.closed
    with pytest.raises(RuntimeError):  # httpx refuses a closed client
        client.v3.email_balance()


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "ftp://x"},
        {"v1_base_url": "api.connectus.cl"},
        {"qr_base_url": "https://q.test/?a=1"},
        {"read_timeout_s": -1},
        {"write_timeout_s": 0},
        {"api_key": ""},
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_client(httpx.Response(200), **overrides)


# --- the real httpx transport, over a Unix socket (no network): timeouts apply ---------
# (No "nothing listening" test here: httpcore leaks the socket of a failed Unix
# connect, which the warnings-as-errors run reports; MockTransport covers the mapping.)
@pytest.fixture
def silent_server(tmp_path: Path) -> Iterator[str]:
    """A Unix-socket server that accepts one connection and never answers."""
    path = str(tmp_path / "c.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    yield path
    thread.join(5)
    for conn in accepted:
        conn.close()
    server.close()


def _real_client(uds: str, **overrides: Any) -> ConnectusClient:
    settings: dict[str, Any] = {
        "api_user": TEST_USER,
        "api_key": TEST_KEY,
        "base_url": "http://connectus.local",
        "v1_base_url": "http://connectus.local",
        "qr_base_url": "http://connectus.local",
        "connect_timeout_s": 1.0,
        "read_timeout_s": 0.05,
        "transport": httpx.HTTPTransport(uds=uds),
    }
    return ConnectusClient(**(settings | overrides))


def test_read_timeout_really_applies_and_is_ambiguous(silent_server: str) -> None:
    with _real_client(silent_server) as client, pytest.raises(errors.ResponseTimeout) as raised:
        send(client)
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
