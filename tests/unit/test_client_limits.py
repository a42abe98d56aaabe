"""The answer cap and the request deadline, on ``httpx.MockTransport`` (no network).

Bodies are generators, so a test sees how much of an answer the client
pulled: an oversized or overdue answer must be given up while it streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectus_worker.worker.connectus import errors
from tests.support.clock import Clock
from tests.support.connectus import make_client

SEND = {"dst_number": "56987688060", "sms_content": "hola"}


class Body:
    """A streamed body of ``chunks`` chunks of ``size`` bytes; counts those pulled."""

    def __init__(self, chunks: int, size: int = 1024, *, clock: Clock | None = None) -> None:
        self.chunks, self.size, self.clock = chunks, size, clock
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            if self.clock is not None:
                self.clock.now += 0.5  # a trickle: one chunk every 0.5 s
            yield b" " * self.size


def test_a_streamed_answer_over_the_cap_is_refused_while_it_streams() -> None:
    body = Body(chunks=1000)
    client, _ = make_client(lambda r: httpx.Response(200, content=body), max_response_bytes=4096)
    with client, pytest.raises(errors.MalformedResponse) as raised:
        client.v3.send_sms(**SEND)
    assert raised.value.reason == "response_too_large"
    assert raised.value.status_code == 200
    assert "larger than 4096 bytes" in str(raised.value)
    assert body.pulled == 5  # 5 KiB read of 1,000 KiB: refused at the first chunk past 4 KiB


def test_a_declared_length_over_the_cap_is_refused_before_the_body() -> None:
    body = Body(chunks=10)
    answer = httpx.Response(200, headers={"Content-Length": "10240"}, content=body)
    client, _ = make_client(answer, max_response_bytes=4096)
    with client, pytest.raises(errors.MalformedResponse) as raised:
        client.v3.send_sms(**SEND)
    assert raised.value.reason == "response_too_large"
    assert body.pulled == 0


def test_an_answer_at_the_cap_is_read() -> None:
    content = json.dumps({"status": "ESME_ROK", "id": "ab", "pad": ""}).encode()
    client, _ = make_client(httpx.Response(200, content=content), max_response_bytes=len(content))
    with client:
        assert client.v3.send_sms(**SEND).provider_id == "ab"


def test_an_oversized_error_answer_is_still_decided_by_its_status() -> None:
    answer = httpx.Response(503, headers={"Retry-After": "7"}, content=Body(chunks=100))
    client, _ = make_client(answer, max_response_bytes=4096)
    with client, pytest.raises(errors.ServiceUnavailable) as raised:
        client.v3.send_sms(**SEND)
    assert raised.value.reason == "http_503"


def test_a_listing_has_its_own_larger_cap() -> None:
    records = [{"id_sms": f"id{i}", "status": "DELIVRD", "dst_number": "56987688060"}
               for i in range(200)]  # fmt: skip
    content = json.dumps({"messages": records}).encode()
    assert 4096 < len(content) < 65536
    client, _ = make_client(
        httpx.Response(200, content=content), max_response_bytes=4096, max_listing_bytes=65536
    )
    with client:
        assert len(client.v3.sms_date_report(begin_date="2026-01-01", end_date="2026-01-02")) == 200
        # The same answer to a call that is not a listing is over its cap.
        with pytest.raises(errors.MalformedResponse, match="larger than 4096 bytes"):
            client.v3.get_sms(id_sms="id1")


def test_a_trickling_answer_is_cut_off_at_the_deadline() -> None:
    clock = Clock(now_ms=100_000)
    body = Body(chunks=100, size=1, clock=clock)
    client, _ = make_client(lambda r: httpx.Response(200, content=body), deadline_s=3.0,
                            clock=clock.seconds)  # fmt: skip
    with client, pytest.raises(errors.ResponseTimeout) as raised:
        client.v3.send_sms(**SEND)
    assert raised.value.reason == "deadline_exceeded"
    assert raised.value.outcome == "ambiguous"
    assert "within 3.0 s" in str(raised.value)
    assert body.pulled == 7  # the first chunk past 3 s (7 x 0.5 s), not the other 93


def test_no_single_timeout_exceeds_the_deadline() -> None:
    client, recorder = make_client(
        httpx.Response(200, json={"status": "ESME_ROK", "id": "ab"}),
        connect_timeout_s=3.0, read_timeout_s=10.0, write_timeout_s=1.0, deadline_s=2.0,
    )  # fmt: skip
    with client:
        client.v3.send_sms(**SEND)
    timeouts = recorder.last.extensions["timeout"]
    assert timeouts == {"connect": 2.0, "read": 2.0, "write": 1.0, "pool": 2.0}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"deadline_s": 0}, "deadline_s must be a finite number > 0"),
        ({"deadline_s": float("inf")}, "deadline_s must be a finite number > 0"),
        ({"deadline_s": float("nan")}, "deadline_s must be a finite number > 0"),
        ({"read_timeout_s": float("inf")}, "read_timeout_s must be a finite number > 0"),
        ({"max_response_bytes": 0}, "max_response_bytes must be >= 1"),
        ({"max_listing_bytes": -1}, "max_listing_bytes must be >= 1"),
    ],
)
def test_bad_limits_are_refused_by_name(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_client(httpx.Response(200, json={}), **overrides)


def test_a_failure_after_the_deadline_is_reported_as_the_deadline() -> None:
    clock = Clock(now_ms=100_000)

    def cut(request: httpx.Request) -> httpx.Response:
        clock.now += 5.0  # the watchdog cut the connection at the deadline
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    client, _ = make_client(cut, deadline_s=3.0, clock=clock.seconds)
    with client, pytest.raises(errors.ResponseTimeout) as raised:
        client.v3.send_sms(**SEND)
    assert raised.value.reason == "deadline_exceeded"
    assert isinstance(raised.value.__cause__, httpx.RemoteProtocolError)


def test_nothing_sent_stays_a_connect_failure_even_after_the_deadline() -> None:
    clock = Clock(now_ms=100_000)

    def refused(request: httpx.Request) -> httpx.Response:
        clock.now += 5.0
        raise httpx.ConnectTimeout("timed out", request=request)

    client, _ = make_client(refused, deadline_s=3.0, clock=clock.seconds)
    with client, pytest.raises(errors.ConnectFailed) as raised:
        client.v3.send_sms(**SEND)
    assert raised.value.reason == "connect_timeout"
