"""Structured logging that never writes personal data or secrets.

:func:`configure_logging` sends every record, structlog's and the standard
library's (Dramatiq, httpx, uvicorn), through one structlog
``ProcessorFormatter`` to stderr as JSON lines. The last processors before
rendering are :func:`core.redaction.redact_event`: they run on *every* event,
ours and foreign, so no call site has to remember to mask anything (what is
masked, and how, is described in :mod:`core.redaction`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import structlog
from structlog.typing import Processor

from core.redaction import redact_event

_HANDLER_MARK = "_connectus_worker_handler"
#: Most lines written in one call (a bound on one write's size).
MAX_LINES_PER_WRITE = 256


def _stdlib_pre_chain() -> list[Processor]:
    """Run on stdlib records (Dramatiq, httpx, uvicorn) before the common tail."""
    # ``extra`` first: the logger name, level and time are written after it,
    # over any ``extra`` key of the same name (core.redaction trusts those three).
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


class _LineWriter:
    """structlog's logger: hands each rendered line to the process's :class:`_Lines`.

    structlog events do not go through the standard library (no
    ``LogRecord``, no handler chain, no second formatter): they are rendered
    once by structlog's own processors. ``name`` is the name given to
    ``structlog.get_logger(name)``.
    """

    def __init__(self, lines: _Lines, name: str) -> None:
        self._lines = lines
        self.name = name

    def msg(self, line: str) -> None:
        self._lines.write(line)

    debug = info = warning = warn = error = err = critical = fatal = exception = log = msg


class _Lines:
    """Writes structlog's lines to the handler's stream, many threads' at a time.

    Why not one write per line under the handler's lock: the write is a
    system call, which releases the GIL, and the writer must then wait for
    the GIL *while holding the lock*. With dozens of send threads logging a
    line per message, every other thread that logs meanwhile blocks on the
    lock, a context switch each (the lock was 8.5% of a worker's GIL samples
    in the fifth round's profile, ``docs/benchmarks.md``).

    Here a line is queued, and the thread that finds no write in progress
    writes every queued line (up to ``MAX_LINES_PER_WRITE``) in one call, under the
    handler's lock, so they never interleave with standard-library records.
    The others return at once. No line waits for a later call: the writer
    looks at the queue again after it lets go, so a line queued just as it
    finished is written by it or by the thread that queued it. Lines keep
    the order in which they were queued. What the write is given was
    rendered in full, so a process killed mid-write loses at most that batch,
    as it would lose a line mid-write.
    """

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self._handler = handler
        self._queued: collections.deque[str] = collections.deque()
        self._writing = threading.Lock()
        self._pid = os.getpid()
        #: Writes made (tests read it).
        self.writes = 0

    def write(self, line: str) -> None:
        queued = self._queued
        queued.append(line)
        while queued:
            if not self._writing.acquire(blocking=False):
                if self._pid == os.getpid():
                    return  # the writer, once it lets go, looks at the queue again
                self._forked(line)
                continue
            try:
                self._write_queued()
            finally:
                self._writing.release()

    def _forked(self, line: str) -> None:
        # A child forked while a parent thread was writing: that thread is not
        # here to let go, and the lines queued before the fork are the parent's.
        self._pid = os.getpid()
        self._writing = threading.Lock()
        self._queued.clear()
        self._queued.append(line)

    def _write_queued(self) -> None:
        queued, lines = self._queued, list[str]()
        with contextlib.suppress(IndexError):
            while len(lines) < MAX_LINES_PER_WRITE:
                lines.append(queued.popleft())
        if not lines:
            return
        handler = self._handler
        handler.acquire()
        try:
            self.writes += 1
            with contextlib.suppress(OSError, ValueError):  # closed or broken stream
                stream = handler.stream
                stream.write("\n".join(lines) + "\n")
                stream.flush()
        finally:
            handler.release()


def configure_logging(*, level: str, json: bool) -> None:
    """Route structlog and stdlib logging to stderr, redacted; JSON lines if ``json``.

    Safe to call again (tests, reloads): our previous handler is replaced,
    handlers installed by others (e.g. pytest's capture) are left alone.

    Cost on the hot path: a structlog call below ``level`` returns at once
    (a no-op method of a filtering logger, nothing is rendered); an enabled
    one runs one processor chain (context, level, time, redaction, render)
    and one write. Standard-library records take the handler's formatter,
    whose tail is the same redaction and renderer.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    tail: list[Processor] = [
        structlog.processors.format_exc_info,  # the traceback text is redacted next
        structlog.processors.UnicodeDecoder(),
        redact_event,
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_stdlib_pre_chain(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)

    lines = _Lines(handler)

    def logger_factory(*args: Any) -> _LineWriter:
        return _LineWriter(lines, str(args[0]) if args else "")

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.StackInfoRenderer(),
            *tail,
        ],
        logger_factory=logger_factory,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Not cached: configure_logging may run again (tests) and must take effect.
        cache_logger_on_first_use=False,
    )


def bind_job_context(
    job_id: str, queue: str, attempt: int, idempotency_key: str | None = None
) -> Mapping[str, Any]:
    """Bind the job's identity to every log line of this thread/task.

    Returns the contextvars tokens; pass them to
    ``structlog.contextvars.reset_contextvars(**tokens)`` or use
    :func:`job_context` to unbind automatically.
    """
    values: dict[str, Any] = {"job_id": job_id, "queue": queue, "attempt": attempt}
    if idempotency_key is not None:
        values["idempotency_key"] = idempotency_key
    return structlog.contextvars.bind_contextvars(**values)


@contextlib.contextmanager
def job_context(
    job_id: str, queue: str, attempt: int, idempotency_key: str | None = None
) -> Iterator[None]:
    """:func:`bind_job_context` for the duration of a ``with`` block."""
    tokens = bind_job_context(job_id, queue, attempt, idempotency_key)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
