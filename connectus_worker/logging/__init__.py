"""Structured logging that never writes personal data or secrets.

:func:`configure_logging` sends every record, structlog's and the standard library's
(Dramatiq, httpx, uvicorn), to stderr as JSON lines, through
:func:`logging.redaction.redact_event` last before rendering: it runs on *every*
event, so no call site has to remember to mask anything.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

import structlog
from structlog.typing import Processor

from connectus_worker.logging.redaction import redact_event

_HANDLER_MARK = "_connectus_worker_handler"


class _LineWriter:
    """structlog's logger: writes each rendered line to our handler's stream, under
    its lock (no line interleaves with a stdlib one), without a ``LogRecord`` or a
    second formatter. ``name``: the one given to ``structlog.get_logger(name)``."""

    def __init__(self, handler: logging.StreamHandler[Any], name: str) -> None:
        self._handler = handler
        self.name = name

    def msg(self, line: str) -> None:
        handler = self._handler
        handler.acquire()
        try:
            with contextlib.suppress(OSError, ValueError):  # closed or broken stream
                stream = handler.stream
                stream.write(line + "\n")
                stream.flush()
        finally:
            handler.release()

    debug = info = warning = warn = error = err = critical = fatal = exception = log = msg


def configure_logging(*, level: str, json: bool) -> None:
    """Route structlog and stdlib logging to stderr, redacted; JSON lines if ``json``.

    Safe to call again (tests): our previous handler is replaced, others' (pytest's
    capture) are left alone. A structlog call below ``level`` returns at once.
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
    # The logger name, level and time are written after ``extra``, over any key of
    # the same name (logging.redaction trusts those three).
    head: list[Processor] = [
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    context = structlog.contextvars.merge_contextvars
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[context, structlog.stdlib.ExtraAdder(), *head],
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

    def logger_factory(*args: Any) -> _LineWriter:
        return _LineWriter(handler, str(args[0]) if args else "")

    structlog.configure(
        processors=[context, *head, structlog.processors.StackInfoRenderer(), *tail],
        logger_factory=logger_factory,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Not cached: configure_logging may run again (tests) and must take effect.
        cache_logger_on_first_use=False,
    )
