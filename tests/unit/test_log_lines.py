"""core.logging._Lines: structlog's lines written many threads' at a time."""

from __future__ import annotations

import io
import logging
import threading

import pytest

from core.logging import MAX_LINES_PER_WRITE, _Lines


class GatedStream(io.StringIO):
    """Its first write blocks until ``go`` is set; records every write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.entered = threading.Event()
        self.go = threading.Event()

    def write(self, text: str) -> int:
        self.writes.append(text)
        if len(self.writes) == 1:
            self.entered.set()
            assert self.go.wait(10)
        return len(text)


def test_lines_queued_during_a_write_are_written_next_in_order_by_the_writer() -> None:
    stream = GatedStream()
    lines = _Lines(logging.StreamHandler(stream))
    first = threading.Thread(target=lines.write, args=("first",))
    first.start()
    assert stream.entered.wait(10)
    # The write is in progress: these return at once instead of waiting for it.
    for n in range(5):
        lines.write(f"queued {n}")
    assert stream.writes == ["first\n"]
    stream.go.set()
    first.join(10)
    assert not first.is_alive()
    assert stream.writes == ["first\n", "".join(f"queued {n}\n" for n in range(5))]
    assert lines.writes == 2


def test_every_line_of_many_threads_is_written_once_and_whole() -> None:
    stream = io.StringIO()
    lines = _Lines(logging.StreamHandler(stream))
    start = threading.Barrier(16)

    def log(t: int) -> None:
        start.wait(10)
        for n in range(500):
            lines.write(f"thread {t} line {n}")

    threads = [threading.Thread(target=log, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    written = stream.getvalue().splitlines()
    assert sorted(written) == sorted(f"thread {t} line {n}" for t in range(16) for n in range(500))
    for t in range(16):  # each thread's lines in the order it logged them
        mine = [line for line in written if line.startswith(f"thread {t} ")]
        assert mine == [f"thread {t} line {n}" for n in range(500)]


def test_one_write_takes_at_most_max_lines() -> None:
    stream = GatedStream()
    lines = _Lines(logging.StreamHandler(stream))
    writer = threading.Thread(target=lines.write, args=("first",))
    writer.start()
    assert stream.entered.wait(10)
    for n in range(MAX_LINES_PER_WRITE + 3):
        lines.write(f"l{n}")
    stream.go.set()
    writer.join(10)
    assert [w.count("\n") for w in stream.writes] == [1, MAX_LINES_PER_WRITE, 3]


def test_the_handlers_lock_is_held_while_writing() -> None:
    """So that a standard-library record, written under that lock, never lands
    inside a batch of lines."""
    handler = logging.StreamHandler(io.StringIO())
    held: list[bool] = []

    class Probe(io.StringIO):
        def write(self, text: str) -> int:
            # Another thread can't take the lock while the batch is written.
            probe = threading.Thread(target=lambda: held.append(not handler.lock.acquire(False)))  # type: ignore[union-attr]
            probe.start()
            probe.join(10)
            return len(text)

    handler.setStream(Probe())
    _Lines(handler).write("x")
    assert held == [True]


def test_a_forked_child_does_not_wait_for_the_parents_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    lines = _Lines(logging.StreamHandler(stream))
    # As a child sees it: a parent thread was writing when it forked, with a line queued.
    lines._writing.acquire()
    lines._queued.append("the parent's line")
    monkeypatch.setattr(lines, "_pid", -1)
    lines.write("the child's line")
    assert stream.getvalue() == "the child's line\n"
    lines.write("and the next")
    assert stream.getvalue().splitlines() == ["the child's line", "and the next"]


def test_a_broken_stream_loses_the_lines_not_the_caller() -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("EPIPE")

    lines = _Lines(logging.StreamHandler(Broken()))
    lines.write("lost")
    lines.write("lost too")  # the lock was let go: a later line is tried again
    assert lines.writes == 2
