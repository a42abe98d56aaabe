"""worker.connectus.http11 against http.client: same answers, same exceptions.

Each answer is written into one end of a socketpair and read from the other,
by our reader and by ``http.client.HTTPResponse`` alike.
"""

from __future__ import annotations

import http.client
import random
import socket

import pytest

from worker.connectus.http11 import MAX_LINE, Answer, read_answer


def _ours(raw: bytes, method: str = "POST") -> Answer:
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(2)
        a.sendall(raw)
        a.shutdown(socket.SHUT_WR)
        return read_answer(b, method, timeout_s=2)


def _theirs(
    raw: bytes, method: str = "POST"
) -> tuple[int, str, list[tuple[str, str]], bytes, bool]:
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(2)
        a.sendall(raw)
        a.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(b, method=method)
        answer.begin()
        content = answer.read()
        result = (answer.status, answer.reason, answer.getheaders(), content, answer.will_close)
        answer.close()
        return result


def _random_answer(rng: random.Random) -> bytes:
    version = rng.choice([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])
    status, reason = rng.choice([(200, b"OK"), (201, b"Created"), (204, b"No Content"),
                                 (304, b"Not Modified"), (404, b""), (429, b"Too Many Requests"),
                                 (500, b"Internal Server Error")])  # fmt: skip
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 17, 300, 5000])))
    headers = [b"Content-Type: application/json"]
    if rng.random() < 0.5:
        headers.append(b"Retry-After:  7 ")
    if rng.random() < 0.3:
        headers.append(rng.choice([b"Connection: close", b"Connection: keep-alive",
                                   b"connection: Keep-Alive"]))  # fmt: skip
    if rng.random() < 0.2:
        headers += [b"X-Folded: first", b"\tsecond"]
    # A chunked 204 or 304 breaks RFC 9110; http.client then reads a body, h11 and we don't.
    framing = rng.choice(["length", "none"] if status in (204, 304) else
                         ["length", "chunked", "none"])  # fmt: skip
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
        payload = body
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        payload, rest = b"", body
        while rest:
            size = rng.randint(1, max(1, len(rest)))
            ext = b";name=value" if rng.random() < 0.3 else b""
            payload += b"%x%s\r\n%s\r\n" % (size, ext, rest[:size])
            rest = rest[size:]
        payload += b"0\r\n" + (b"X-Trailer: t\r\n" if rng.random() < 0.5 else b"") + b"\r\n"
    else:
        payload = body
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if rng.random() < 0.1 else b""
    head = b"%s %d %s\r\n" % (version, status, reason) + b"".join(h + b"\r\n" for h in headers)
    return interim + head + b"\r\n" + payload


def test_answers_read_as_http_client_reads_them() -> None:
    rng = random.Random(11)
    for _ in range(300):
        raw = _random_answer(rng)
        ours = _ours(raw)
        status, reason, headers, content, will_close = _theirs(raw)
        assert (ours.status, ours.reason, ours.content, ours.will_close) == (
            status, reason, content, will_close,
        ), raw[:200]  # fmt: skip
        decoded = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in ours.headers]
        # email's parser keeps trailing whitespace and a fold's line break; as h11
        # (RFC 9110: the whitespace around a value is not part of it), we don't.
        headers = [(n, " ".join(v.split())) for n, v in headers]
        assert decoded == headers, raw[:200]


@pytest.mark.parametrize(
    ("raw", "method"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD"),
        (b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", "POST"),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET"),
    ],
)
def test_no_body_after_head_204_or_304_whatever_the_framing_says(raw: bytes, method: str) -> None:
    answer = _ours(raw + b"stray", method=method)
    assert (answer.content, answer.will_close) == (b"", False)


@pytest.mark.parametrize(
    ("raw", "error", "text"),
    [
        (b"", http.client.RemoteDisconnected, "without response"),
        (b"garbage\r\n", http.client.BadStatusLine, "garbage"),
        (b"HTTP/1.1 abc OK\r\n\r\n", http.client.BadStatusLine, "abc"),
        (b"HTTP/1.1 42 Odd\r\n\r\n", http.client.BadStatusLine, "42"),
        (b"HTTP/2.0 200 OK\r\n\r\n", http.client.UnknownProtocol, "HTTP/2.0"),
        (b"HTTP/1.1 200 " + b"x" * MAX_LINE + b"\r\n", http.client.LineTooLong, "status line"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", http.client.HTTPException,
         "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http.client.HTTPException, "malformed"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead,
         "5 bytes read, 5 more expected"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ValueError, "zz"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc", ValueError,
         "negative"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc", http.client.IncompleteRead,
         "3 bytes read"),
    ],
)  # fmt: skip
def test_a_broken_answer_raises_what_http_client_would(
    raw: bytes, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        _ours(raw)
    assert text in str(caught.value) or text in repr(caught.value)


def test_a_silent_peer_times_out() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(0.05)
        with pytest.raises(TimeoutError):
            read_answer(b, "POST", timeout_s=0.05)
