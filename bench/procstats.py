"""Process figures from /proc: CPU seconds, peak and current RSS, children.

Linux only (the benchmark machine). Units: seconds of CPU, MiB of memory.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (what ``pgrep -P pid`` prints)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return sorted(set(out))


def cpu_split(pid: int, *, include_children: bool = True) -> tuple[float, float]:
    """(user, kernel) CPU s of ``pid``: utime, stime (+ its waited-for children's)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    # Field 2 (comm) may contain spaces: split after its closing parenthesis.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    if include_children:
        utime, stime = utime + cutime, stime + cstime
    return utime / CLK_TCK, stime / CLK_TCK


def cpu_seconds(pid: int, *, include_children: bool = True) -> float:
    """utime + stime (+ cutime + cstime of waited-for children) of ``pid``, in s."""
    return sum(cpu_split(pid, include_children=include_children))


def tree_cpu_seconds(root: int) -> float:
    """CPU s of ``root`` and of its live children (plus children already reaped)."""
    return sum(tree_cpu_split(root))


def tree_cpu_split(root: int) -> tuple[float, float]:
    """(user, kernel) CPU s of ``root`` and of its live children."""
    splits = [cpu_split(pid) for pid in (root, *children(root))]
    return sum(u for u, _ in splits), sum(k for _, k in splits)


def switches(pid: int) -> int:
    """Context switches (voluntary + not) of every live thread of ``pid``; 0 if gone.

    On a virtual machine a switch is dear: the kernel's share of a saturated
    worker's CPU goes mostly to them (``docs/benchmarks.md``, seventh round).
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in task.read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def tree_switches(root: int) -> int:
    """Context switches of ``root``'s live threads and of its live children's."""
    return sum(switches(pid) for pid in (root, *children(root)))


def status_kb(pid: int, name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (``VmHWM``, ``VmRSS``); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class RssSampler:
    """Samples VmRSS and VmHWM of a set of processes every ``interval_s`` in a thread.

    ``pids`` is called at each tick (workers may be respawned). ``samples``
    holds ``(t, {pid: rss_kb})``; ``hwm_kb`` the highest VmHWM seen per pid.
    """

    pids: object  # Callable[[], list[int]]
    interval_s: float = 0.5
    samples: list[tuple[float, dict[int, int]]] = field(default_factory=list)
    hwm_kb: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        now = time.monotonic()
        rss: dict[int, int] = {}
        for pid in self.pids():  # type: ignore[operator]
            kb = status_kb(pid, "VmRSS")
            if kb:
                rss[pid] = kb
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), status_kb(pid, "VmHWM"))
        self.samples.append((now, rss))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def peak_mb(self) -> float | None:
        return max(self.hwm_kb.values()) / 1024 if self.hwm_kb else None

    def growth(self) -> float | None:
        """Mean RSS (per process) of the last quarter of samples over the first quarter, - 1."""
        series = [sum(s.values()) / len(s) for _, s in self.samples if s]
        if len(series) < 8:
            return None
        q = len(series) // 4
        first = sum(series[:q]) / q
        last = sum(series[-q:]) / q
        return last / first - 1
