"""bench.procstats: CPU split into user and kernel, and context switches, read from /proc."""

from __future__ import annotations

import os
import socket
import threading

from bench import procstats


def test_the_split_adds_up_to_the_cpu_seconds() -> None:
    user, kernel = procstats.cpu_split(os.getpid())
    assert user > 0 and kernel >= 0
    assert abs(user + kernel - procstats.cpu_seconds(os.getpid())) < 0.05


def test_a_process_that_is_gone_counts_nothing() -> None:
    assert procstats.cpu_split(2**22 + 1) == (0.0, 0.0)
    assert procstats.switches(2**22 + 1) == 0


def test_a_thread_blocked_on_a_socket_adds_its_switches() -> None:
    """Every wait that puts a thread to sleep is one voluntary switch at least."""
    a, b = socket.socketpair()
    before = procstats.switches(os.getpid())

    def echo() -> None:
        for _ in range(20):
            b.sendall(b.recv(1))

    thread = threading.Thread(target=echo)
    thread.start()
    with a, b:
        for _ in range(20):
            a.sendall(b"x")
            assert a.recv(1) == b"x"  # this thread sleeps until the echo arrives
        thread.join(5)
    # The two threads hand the byte back and forth: each waits 20 times.
    mine = procstats.switches(os.getpid())
    assert mine - before >= 20
    # Read after: the tree counts this process too, and its count only grows.
    assert procstats.tree_switches(os.getpid()) >= mine
