"""bench.targets: the lines shown beside the verdicts (ceiling share, cores busy)."""

from __future__ import annotations

import os

from bench.rows import Result
from bench.targets import _ceiling_line, _cores, targets


def _drain(name: str, system: str, rate: float, cpu: float, **details: object) -> Result:
    return Result(name=name, system=system, latency_ms=50, processes=1, messages=1000,
                  msgs_per_s=rate, cpu_s_per_1k=cpu, details=dict(details))  # fmt: skip


def test_cores_busy_is_each_process_cpu_per_message_times_the_rate() -> None:
    run = _drain("drain_50ms_t96", "project", 1000, 0.95,
                 sandbox_cpu_s_per_1k=0.25, redis_cpu_s_per_1k=0.2)  # fmt: skip
    assert _cores(run) == (
        f"; cores busy: 1.40 (workers 0.95, sandbox 0.25, Redis 0.20) of {os.cpu_count()}"
    )
    assert _cores(_drain("drain_50ms_t96", "project", 1000, 0.95)) == ""  # not measured


def test_the_ceiling_line_gives_the_project_share_at_the_same_threads() -> None:
    ceiling = _drain("ceiling_50ms_t96", "baseline", 1900, 0.1, threads=96)
    project = _drain("drain_50ms_t96", "project", 950, 0.95)
    other = _drain("drain_50ms_t64", "project", 900, 0.9)
    line = _ceiling_line(ceiling, [ceiling, other, project])
    assert line == (
        "1,900 msg/s (ceiling_50ms_t96); drain_50ms_t96 reaches 50% of it,"
        " 0.95 against 0.10 ms of CPU per message"
    )
    assert _ceiling_line(ceiling, [ceiling, other]) == "1,900 msg/s (ceiling_50ms_t96)"


def test_the_ceiling_is_shown_beside_the_verdict_never_judged() -> None:
    baseline = _drain("drain_50ms_t8", "baseline", 150, 1.4)
    project = _drain("drain_50ms_t96", "project", 950, 0.95)
    ceiling = _drain("ceiling_50ms_t96", "baseline", 1900, 0.1, threads=96)
    shown = [t for t in targets([baseline, project, ceiling], {}) if "Dramatiq alone" in t[0]]
    assert [verdict for *_, verdict in shown] == ["shown, not judged"]
    assert not [t for t in targets([baseline, project], {}) if "Dramatiq alone" in t[0]]
