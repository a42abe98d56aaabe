"""Auto-pipelining of the send path's Lua scripts: many threads, one round trip.

A worker process runs dozens of send threads, and each send makes two script
calls (admit, finish). Made one by one, every call pays redis-py's whole
per-command path (pool checkout, a readiness poll of the socket, the retry
wrapper, reply parsing) and a round trip, and 64 threads doing so contend for
the GIL at every step: measured on this 2-core box (a loop calling one
registered script), 110-135 µs of client CPU per call from 1 to 4 threads and
213-225 µs from 16 to 64.

:class:`AutoPipeline` stands in for the client of a registered
:class:`redis.commands.core.Script` (``script(keys=..., args=...,
client=auto)``). It batches by combining, with no thread of its own: a caller
that finds no batch in flight leads. It takes every call queued at that moment
(its own first), writes them at once on the leaders' own connection (one
taken from the client's pool and kept) and reads every answer, hands each
caller its answer or error, and passes the lead to the first call queued
meanwhile. The others block until their answer (or the lead) arrives. Alone,
a caller makes its own round trip with no thread hand-off (91-124 µs); the
more threads wait, the larger the batch: 61-69 µs of client CPU per call in
the same measurement at 16 to 64 threads.

What does not change:

- **Each script still runs atomically**, exactly once per call: a pipeline
  is only a way to write several commands before reading their answers.
- **Errors stay the caller's.** A script error (``NOSCRIPT`` included, which
  :class:`~redis.commands.core.Script` answers by loading the script and
  calling again) reaches only the call that caused it. A connection error
  fails every call of that batch with the same class, as it would have failed
  each of them alone, and the connection is made again for the next batch;
  the ledger (:mod:`worker.ledger`) retries the calls, which is safe because
  every send-path transition is idempotent or fenced.
- **Nothing waits forever.** A batch's reads have the client's socket
  timeout. A call still queued after ``wait_timeout_s`` (s, default 120: far
  longer than a batch in flight can last) leaves the queue unsent and raises
  :class:`redis.TimeoutError`; a call already written waits for its answer,
  which those socket timeouts bound.
- **Shutdown and fork.** After :meth:`AutoPipeline.close`, calls go straight to
  the client, one by one; what is queued is still sent, and the connection
  goes back to the pool. A forked child starts with an empty queue, no leader
  and a connection of its own.

In a worker process (50 ms sandbox latency, 64 threads) it raised the drain
from 821-928 to 963-1,012 msg/s (``docs/benchmarks.md``, fifth round).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
import structlog

log = structlog.get_logger("core.autopipeline")

#: Most commands written in one pipeline (a bound on one batch's reply size).
MAX_BATCH = 128


class _Call:
    __slots__ = ("args", "done", "error", "lead", "result")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        # Released once: when the answer is in, or when the lead is handed over.
        self.done = threading.Lock()
        self.done.acquire()
        self.lead = False
        self.result: Any = None
        self.error: BaseException | None = None


class AutoPipeline:
    """Duck-types the two methods a :class:`~redis.commands.core.Script` calls."""

    def __init__(self, client: redis.Redis, *, wait_timeout_s: float = 120.0) -> None:
        self.client = client
        self.wait_timeout_s = wait_timeout_s
        self._guard = threading.Lock()
        # Invariant (under _guard): calls are pending only while a leader is.
        self._pending: list[_Call] = []
        self._leading = False
        self._pid = os.getpid()
        self._closed = False
        # The leaders' connection (_round_trip), made by the first batch of a process.
        self._conn: Any = None
        self._conn_pid = 0
        #: Calls and batches sent (tests read them). Only a leader writes them,
        #: and there is one leader at a time.
        self.calls = 0
        self.batches = 0
        #: Calls whose wait ran out while they were in a batch in flight (they wait
        #: on for the answer): Redis slower than ``wait_timeout_s``. Written under
        #: ``_guard``.
        self.overdue = 0

    @property
    def queued(self) -> int:
        """Calls waiting for a leader to write them (a gauge: a batch in flight is not)."""
        with self._guard:
            return len(self._pending)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if self._closed:
            return self.client.evalsha(sha, numkeys, *keys_and_args)
        call = _Call(("EVALSHA", sha, numkeys, *keys_and_args))
        with self._guard:
            if self._pid != os.getpid():  # a forked child: the parent's leader isn't here
                self._pid, self._pending, self._leading = os.getpid(), [], False
            self._pending.append(call)
            lead = not self._leading
            self._leading = True
        if lead or self._wait(call):
            self._lead(call)
        if call.error is not None:
            raise call.error
        return call.result

    def script_load(self, script: str) -> Any:
        return self.client.script_load(script)

    def close(self) -> None:
        """Later calls go straight to the client; what is queued is still sent.

        The leaders' connection goes back to the client's pool once no batch is
        in flight (a batch in flight gives it back when it ends).
        """
        self._closed = True
        with self._guard:
            if not self._leading:
                self._give_back()

    def _give_back(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._conn_pid == os.getpid():
            self.client.connection_pool.release(conn)

    def _wait(self, call: _Call) -> bool:
        """Block until ``call`` is answered or handed the lead; True if it must lead."""
        if call.done.acquire(timeout=self.wait_timeout_s):
            return call.lead
        with self._guard:
            if call.lead:  # handed over just as the wait ran out
                return True
            if call in self._pending:  # never written: leave, unsent
                self._pending.remove(call)
                raise redis.TimeoutError(f"no answer from Redis within {self.wait_timeout_s} s")
            self.overdue += 1
        # Written in the batch in flight: its answer is bounded by the socket timeouts.
        call.done.acquire()
        return False

    def _lead(self, own: _Call) -> None:
        with self._guard:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
        self._execute(batch, own)
        with self._guard:
            if self._pending:
                successor = self._pending[0]
                successor.lead = True
                successor.done.release()
            else:
                self._leading = False
                if self._closed:
                    self._give_back()

    def _execute(self, batch: list[_Call], own: _Call) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            answers = self._round_trip([call.args for call in batch])
        except BaseException as exc:  # every caller must be answered
            for call in batch:
                call.error = _fresh(exc)
            if not isinstance(exc, redis.RedisError):
                log.error("autopipeline.failed", error=repr(exc))
        else:
            for call, answer in zip(batch, answers, strict=True):
                if isinstance(answer, Exception):
                    call.error = answer
                else:
                    call.result = answer
        for call in batch:
            if call is not own:
                call.done.release()

    def _round_trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Write ``commands`` at once on the leaders' connection, then read every answer.

        An error reply is returned in its place, not raised. The connection is
        taken from the client's pool once and kept: there is one leader at a
        time, and a pool checkout per batch (with its readiness ``poll``, a GIL
        hand-off) and a redis-py ``Pipeline`` cost twice the client CPU of
        this (114 against 60 µs for a batch of 4, ``docs/benchmarks.md``, ninth
        round). redis-py's own retry of a lost connection is not made here:
        the error reaches the callers, and the ledger retries (module docstring).
        """
        conn = self._conn
        if conn is None or self._conn_pid != os.getpid():
            conn = self._conn = self.client.connection_pool.get_connection()
            self._conn_pid = os.getpid()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            answers: list[Any] = []
            for _ in commands:
                try:
                    answers.append(conn.read_response())
                except redis.ResponseError as error:  # this command's own error reply
                    answers.append(error)
            return answers
        except BaseException:
            # Broken, or left with unread answers: reconnect before the next batch.
            conn.disconnect()
            raise


def _fresh(exc: BaseException) -> BaseException:
    """One exception object per caller: each thread's raise sets its own traceback."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:  # an exception class with an unusual constructor
        return exc
    copy.__cause__ = exc
    return copy
