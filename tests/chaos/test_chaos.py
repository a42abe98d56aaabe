"""The proof: N SMS through real processes while workers and Redis are killed.

Judged by the sandbox's charge ledger: no key charged twice, no key lost
(charged exactly once, or dead-lettered / in review with its reason), a
repeated submission answers with the first job's id, and the whole run stays
within a bound derived from N and the fault plan. See docs/reliability.md and
:mod:`tests.chaos.harness`.

- ``test_chaos_short``: marker ``chaos``, 2,000 messages, part of ``make test``; again
  with 600 against the sandbox's documented answers (no ids in send answers).
- ``test_chaos_full``: marker ``chaos_full``, 20,000 messages, ``make chaos``.
- ``test_chaos_failover``: marker ``chaos_full``, 5,000 messages while the Redis
  primary is SIGKILLed and Sentinel promotes its replica (``make chaos``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosReport, FaultPlan, run_chaos


def _run_and_judge(n: int, plan: FaultPlan, workdir: Path) -> ChaosReport:
    report = run_chaos(n, plan, workdir=workdir)
    print()
    print(report.table())
    print(f"  logs: {workdir}")
    problems = report.problems()
    if problems:
        # pytest prunes old tmp dirs: keep the evidence where it survives.
        kept = Path(tempfile.mkdtemp(prefix="cw-chaos-evidence-"))
        for name in ("workers.log", "sandbox.log"):
            if (workdir / name).exists():
                shutil.copy2(workdir / name, kept / name)
        (kept / "report.txt").write_text(report.table() + "\n" + "\n".join(problems) + "\n")
        problems.append(f"evidence kept in {kept}")
    assert not problems, "\n".join(problems)
    # The faults really happened (a plan the sandbox ignored would prove nothing).
    assert report.status_count("429") > 0
    assert report.status_count("dropped") > 0
    assert report.send_requests > n
    assert report.duplicates_submitted == int(n * plan.duplicate_share)
    return report


@pytest.mark.chaos
@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("answers", "n", "kills"),
    # Documented answers (no ids: each looked up after the send) with fewer messages
    # and kills, to keep the added run time small; the same guarantees are judged.
    [("chosen", 2_000, 3), ("documented", 600, 2)],
)
def test_chaos_short(tmp_path: Path, answers: str, n: int, kills: int) -> None:
    # A 5 s lease margin (lease 2 x (2 + 5 + 0.2) + 5 = 19 s, sends take ~10 ms):
    # the sends cut by the last kill settle ~25 s sooner than with the default 30 s.
    plan = FaultPlan(processes=2, threads=8, worker_kills=kills, redis_outages=1, seed=7,
                     lease_margin_s=5, answers=answers)  # fmt: skip
    assert plan.time_bound_s(n) < 240
    report = _run_and_judge(n, plan, tmp_path)
    if answers == "documented":
        # Every sent job's id was looked up: found, or (never listed) not known.
        assert report.id_lookups["found"] >= report.states["sent"] * 0.9
        assert report.id_lookups["pending"] == 0  # the run waited for the lookups


@pytest.mark.chaos_full
@pytest.mark.timeout(900)
def test_chaos_full(tmp_path: Path) -> None:
    # 32 threads: the default WORKER_THREADS, the fastest setting measured in
    # docs/benchmarks.md; the issue asks that the guarantees hold with it.
    plan = FaultPlan(processes=4, threads=32, worker_kills=5, redis_outages=1, seed=20240601)
    assert plan.time_bound_s(20_000) < 900
    _run_and_judge(20_000, plan, tmp_path)


@pytest.mark.chaos_full
@pytest.mark.timeout(600)
def test_chaos_failover(tmp_path: Path) -> None:
    # A Sentinel deployment (primary, replica, three sentinels); claims and enqueues
    # are confirmed on the replica (REDIS_MIN_REPLICAS=1) before they are acted on.
    plan = FaultPlan(processes=3, threads=16, worker_kills=2, redis_outages=1, failover=True,
                     lease_margin_s=5, seed=23)  # fmt: skip
    assert plan.time_bound_s(5_000) < 600
    report = _run_and_judge(5_000, plan, tmp_path)
    assert [e.kind for e in report.events if e.kind.startswith(("redis", "rejoined"))] == [
        "redis_down", "redis_up", "rejoined"
    ]  # fmt: skip
