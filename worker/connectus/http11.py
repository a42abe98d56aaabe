"""Read one HTTP/1.1 answer off a socket: status, headers and body, as bytes.

The stdlib engine (:mod:`worker.connectus.stdlib_http`) reads answers with
this instead of :class:`http.client.HTTPResponse`, whose header parsing goes
through the ``email`` package: about 30% of the engine's CPU per request
(profiled with ``cProfile``; ``docs/benchmarks.md``, fifth round). What it
keeps from ``http.client``:

- the same limits: a line of at most 65,536 bytes, at most 100 headers;
- the same framing: ``Transfer-Encoding: chunked`` (chunk extensions and
  trailers skipped), else ``Content-Length``, else the body runs to the close;
  no body after ``HEAD``, 1xx, 204 and 304; an interim ``100 Continue`` is
  skipped;
- the same keep-alive decision: HTTP/1.0 closes unless ``Connection:
  keep-alive``, HTTP/1.1 closes on ``Connection: close``, and an answer with
  no framing closes;
- the same exceptions, so the caller's mapping to httpx's is unchanged:
  ``RemoteDisconnected`` (closed before a status line), ``BadStatusLine``,
  ``LineTooLong``, ``UnknownProtocol``, ``IncompleteRead`` (a body or chunk
  cut short), ``HTTPException`` (too many headers), ``ValueError`` (a bad
  chunk size); timeouts (:class:`TimeoutError`) and socket errors pass
  through.

It is stricter in one place, as h11 (the httpcore engine's parser) is: a
header line without a colon is an error, not the silent end of the headers.
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass
from typing import Any

from worker.connectus.sockio import SocketReader

MAX_LINE = 65536
MAX_HEADERS = 100
_BLANK = (b"\r\n", b"\n", b"")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[bytes, bytes]]
    content: bytes
    will_close: bool


def read_answer(
    sock: socket.socket, method: str, *, timeout_s: float | None, poller: Any | None = None
) -> Answer:
    """The next answer on ``sock`` to a ``method`` request.

    Each wait for bytes lasts at most ``timeout_s`` (s; None: no limit), and
    :class:`TimeoutError` is raised when one runs out (:class:`SocketReader`,
    which ``poller`` is lent to).
    """
    # A reader per answer, as http.client makes: bytes it read past the answer
    # leave with it, and the caller's staleness check sees only the socket.
    fp = SocketReader(sock, timeout_s=timeout_s, poller=poller)
    while True:
        version, status, reason = _status_line(fp)
        headers = _headers(fp)
        if status != 100:
            break
    fields = {name.lower(): value for name, value in headers}
    will_close = _will_close(version, fields.get(b"connection"))
    chunked = fields.get(b"transfer-encoding", b"").strip().lower() == b"chunked"
    length = None if chunked else _length(fields.get(b"content-length"))
    if status in (204, 304) or 100 <= status < 200 or method == "HEAD":
        content = b""
    elif chunked:
        content = _chunked(fp)
    elif length is not None:
        content = _exactly(fp, length)
    else:  # no framing: the body runs to the close
        content, will_close = fp.read(), True
    return Answer(status, reason, headers, content, will_close)


def _line(fp: SocketReader, what: str) -> bytes:
    line = fp.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong(what)
    return line


def _status_line(fp: SocketReader) -> tuple[int, int, str]:
    line = _line(fp, "status line")
    if not line:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    parts = line.decode("iso-8859-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise http.client.BadStatusLine(repr(line))
    try:
        status = int(parts[1])
    except ValueError:
        raise http.client.BadStatusLine(repr(line)) from None
    if not 100 <= status <= 999:
        raise http.client.BadStatusLine(repr(line))
    if parts[0] == "HTTP/1.0":
        version = 10
    elif parts[0].startswith("HTTP/1."):
        version = 11
    else:
        raise http.client.UnknownProtocol(parts[0])
    return version, status, parts[2].strip() if len(parts) > 2 else ""


def _headers(fp: SocketReader) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    count = 0
    while True:
        line = _line(fp, "header line")
        count += 1
        if count > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in _BLANK:
            return headers
        if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip())
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise http.client.HTTPException(f"malformed header line {line[:40]!r}")
        headers.append((name, value.strip()))


def _will_close(version: int, connection: bytes | None) -> bool:
    tokens = b"" if connection is None else connection.lower()
    if version == 11:
        return b"close" in tokens
    return b"keep-alive" not in tokens


def _length(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def _exactly(fp: SocketReader, amount: int) -> bytes:
    data = fp.read(amount)
    if len(data) < amount:
        raise http.client.IncompleteRead(data, amount - len(data))
    return data


def _chunked(fp: SocketReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = _line(fp, "chunk size").split(b";", 1)[0].strip()
        size = int(size_line, 16)  # ValueError on garbage, as http.client
        if size < 0:
            raise ValueError(f"negative chunk size {size_line[:20]!r}")
        if size == 0:
            break
        parts.append(_exactly(fp, size))
        _exactly(fp, 2)  # the CRLF after the chunk
    while _line(fp, "trailer line") not in _BLANK:
        pass
    return b"".join(parts)
