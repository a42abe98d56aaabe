"""The supervisor behind ``connectus worker``: N worker processes, respawned when they die.

Dramatiq's own master exits when one process dies; here a dead process is replaced
(with a capped backoff) and the others keep working. A child that exits with
``EX_CONFIG`` (78) is not respawned: its settings will stay wrong. SIGTERM/SIGINT are
forwarded to every child, which drains; those alive after ``grace_s`` + 5 s are killed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

import structlog

log = structlog.get_logger("connectus_worker.worker.supervisor")

EX_CONFIG = 78


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    done: bool = False


class Supervisor:
    """Keeps ``processes`` children running ``command`` until stopped."""

    def __init__(
        self,
        *,
        processes: int,
        command: Sequence[str],
        grace_s: float,
        max_backoff_s: float = 30.0,
        stable_after_s: float = 60.0,
        popen: Callable[[Sequence[str]], subprocess.Popen[bytes]] = subprocess.Popen,
        poll_interval_s: float = 0.2,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.slots = [_Slot(i) for i in range(processes)]
        self.command, self.grace_s, self.popen = list(command), grace_s, popen
        self.max_backoff_s, self.stable_after_s = max_backoff_s, stable_after_s
        self.poll_interval_s = poll_interval_s
        self.stopping = threading.Event()
        self.restarts = 0
        # ``on_exit(pid)`` runs when a child is reaped (metrics: mark it dead).
        self.on_exit = on_exit
        # Read by the health endpoint's thread: when the loop last went round
        # (monotonic s), and whether run() has returned.
        self.last_tick = time.monotonic()
        self.finished = False

    def install_signal_handlers(self) -> None:
        def _on_signal(signum: int, frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    def run(self) -> int:
        """Supervise until stopped; returns 0, or 78 if every child had a config error."""
        try:
            while not self.stopping.is_set():
                if not self.step(time.monotonic()):
                    log.error("supervisor.all_children_misconfigured")
                    return EX_CONFIG
                self.stopping.wait(self.poll_interval_s)
            self._shutdown()
            return 0
        finally:
            self.finished = True

    def step(self, now: float) -> bool:
        """One round of the loop at monotonic time ``now`` (s): reap the children that
        exited, start those due. False when no child can run (every one misconfigured)."""
        self.last_tick = now
        for slot in self.slots:
            self._tend(slot, now)
        return not all(slot.done for slot in self.slots)

    def running(self) -> int:
        """Children started and not yet reaped (no system call: safe from any thread)."""
        return sum(1 for slot in self.slots if slot.process is not None)

    def liveness(self, *, stale_after_s: float = 10.0) -> tuple[bool, str]:
        """Alive: the loop went round within ``stale_after_s`` (s), or is draining, and
        some child is running or due to be respawned (not every slot misconfigured)."""
        if self.finished:
            return False, "supervisor loop has ended"
        if not self.stopping.is_set() and time.monotonic() - self.last_tick > stale_after_s:
            return False, f"supervisor loop stalled for more than {stale_after_s:g} s"
        if all(slot.done for slot in self.slots):
            return False, "no child can run (configuration error)"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        """Ready (as far as the supervisor knows): at least one child is running."""
        if self.running() == 0:
            return False, "no worker process is running"
        return True, "ok"

    def _reaped(self, pid: int) -> None:
        if self.on_exit is not None:
            try:
                self.on_exit(pid)
            except Exception:  # bookkeeping must never stop supervision
                log.exception("supervisor.on_exit_failed", pid=pid)

    def _tend(self, slot: _Slot, now: float) -> None:
        if slot.done:
            return
        proc = slot.process
        if proc is not None:
            code = proc.poll()
            if code is None:
                if now - slot.started_at > self.stable_after_s:
                    slot.failures = 0
                return
            slot.process = None
            self._reaped(proc.pid)
            if code == EX_CONFIG:
                log.error("supervisor.child_config_error", slot=slot.index, pid=proc.pid)
                slot.done = True
                return
            slot.failures += 1
            backoff = min(self.max_backoff_s, 0.5 * 2 ** (slot.failures - 1))
            slot.next_start = now + backoff
            log.warning("supervisor.child_died", slot=slot.index, pid=proc.pid, exit_code=code,
                        respawn_in_s=backoff)  # fmt: skip
        if now >= slot.next_start:
            slot.process = self.popen(self.command)
            slot.started_at = now
            if slot.failures:
                self.restarts += 1
            log.info("supervisor.child_started", slot=slot.index, pid=slot.process.pid)

    def _shutdown(self) -> None:
        alive = [s.process for s in self.slots if s.process and s.process.poll() is None]
        log.info("supervisor.draining", children=len(alive), grace_s=self.grace_s)
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s + 5
        for proc in alive:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("supervisor.child_killed", pid=proc.pid)
                proc.kill()
                proc.wait()
            self._reaped(proc.pid)


def worker_command(*, threads: int, queues: Sequence[str]) -> list[str]:
    """The command line of one worker process."""
    module = "connectus_worker.worker.process"
    return [sys.executable, "-m", module, "--threads", str(threads), "--queues", ",".join(queues)]
