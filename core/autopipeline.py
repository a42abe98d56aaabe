"""Auto-pipelining of the send path's Lua scripts: many threads, one round trip.

A worker process runs dozens of send threads, and each send makes two script
calls (admit, finish). Made one by one, every call pays redis-py's whole
per-command path (pool checkout, a readiness poll of the socket, the retry
wrapper, reply parsing) and a round trip, and 64 threads doing so contend for
the GIL at every step: measured on this 2-core box, 140-190 µs of client CPU
per call, whether from 8 threads or 64.

:class:`AutoPipeline` stands in for the client of a registered
:class:`redis.commands.core.Script` (``script(keys=..., args=...,
client=auto)``). Callers queue their ``EVALSHA`` and block; one batcher thread
takes everything queued at that moment and sends it as one non-transactional
pipeline, then hands each caller its own answer or error. The more threads
wait, the larger the batch: 35-75 µs of client CPU per call in the same
measurement.

What does not change:

- **Each script still runs atomically**, exactly once per call: a pipeline
  is only a way to write several commands before reading their answers.
- **Errors stay the caller's.** A script error (``NOSCRIPT`` included, which
  :class:`~redis.commands.core.Script` answers by loading the script and
  calling again) reaches only the call that caused it. A connection error
  fails every call of that batch with the same class, as it would have failed
  each of them alone; the ledger (:mod:`worker.ledger`) retries them, which is
  safe because every send-path transition is idempotent or fenced.
- **Nothing waits forever.** The pipeline's reads have the client's socket
  timeout; a caller also stops waiting after ``wait_timeout_s`` (s, default
  120: longer than redis-py's own retries of a lost connection, so that it
  only fires if the batcher itself is stuck) and gets :class:`redis.TimeoutError`.
- **Shutdown.** :meth:`AutoPipeline.close` answers what is queued; calls made
  after it go straight to the client, one by one.

Measured in a worker process draining at 50 ms sandbox latency, 64 threads:
3.2 calls per pipeline on average (``docs/benchmarks.md``, fifth round).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import redis
import structlog

log = structlog.get_logger("core.autopipeline")

#: Most commands written in one pipeline (a bound on one batch's reply size).
MAX_BATCH = 128


class _Call:
    __slots__ = ("args", "done", "error", "result")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        self.done = threading.Lock()
        self.done.acquire()  # released by the batcher when the answer is in
        self.result: Any = None
        self.error: BaseException | None = None


class AutoPipeline:
    """Duck-types the two methods a :class:`~redis.commands.core.Script` calls."""

    def __init__(self, client: redis.Redis, *, wait_timeout_s: float = 120.0) -> None:
        self.client = client
        self.wait_timeout_s = wait_timeout_s
        self._guard = threading.Lock()
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        #: Calls and batches sent (for tests and the benchmark's details).
        self.calls = 0
        self.batches = 0

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if self._closed:
            return self.client.evalsha(sha, numkeys, *keys_and_args)
        call = _Call(("EVALSHA", sha, numkeys, *keys_and_args))
        self._ensure_started()
        self._queue.put(call)
        if not call.done.acquire(timeout=self.wait_timeout_s):
            raise redis.TimeoutError(f"no answer from Redis within {self.wait_timeout_s} s")
        if call.error is not None:
            raise call.error
        return call.result

    def script_load(self, script: str) -> Any:
        return self.client.script_load(script)

    def close(self) -> None:
        """Answer what is queued, then stop the batcher (later calls go direct)."""
        with self._guard:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None and self._pid == os.getpid():
            self._queue.put(None)
            thread.join(timeout=self.wait_timeout_s)

    def _ensure_started(self) -> None:
        # The pid check restarts the batcher in a forked child, which inherits
        # the object but not the thread.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._guard:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._queue = queue.SimpleQueue()
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="redis-autopipeline", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        pending = self._queue
        while True:
            first = pending.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._execute(batch)
            if stop:
                return

    def _execute(self, batch: list[_Call]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            pipe = self.client.pipeline(transaction=False)
            for call in batch:
                pipe.execute_command(*call.args)  # type: ignore[no-untyped-call]
            answers = pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for call in batch:
                call.error = _fresh(exc)
                call.done.release()
            if not isinstance(exc, redis.RedisError):
                log.error("autopipeline.failed", error=repr(exc))
            return
        for call, answer in zip(batch, answers, strict=True):
            if isinstance(answer, Exception):
                call.error = answer
            else:
                call.result = answer
            call.done.release()


def _fresh(exc: BaseException) -> BaseException:
    """One exception object per caller: each thread's raise sets its own traceback."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:
        return exc
    copy.__cause__ = exc
    return copy
