"""``python -m bench [--quick]``: run the scenarios, print a table, write the results.

Outputs (all in one invocation, against one Redis and one sandbox):

- ``bench/results.json``: ``{"machine", "command", "scenarios": [row, ...]}``
  (row fields in :class:`bench.rows.Result`; null = not measured);
- ``bench/details.json``: per-scenario extras (commands by name, RSS series,
  enqueue rate during the run, sandbox and Redis CPU, profiles);
- ``docs/benchmarks.md``: the generated section between its markers.

Scenario names: ``<scenario>_t<threads>`` for worker runs (threads per
process), e.g. ``sms_50ms_t64``; ``sandbox_0ms``/``sandbox_50ms`` for the
sandbox alone; ``enqueue`` for the producer alone; ``soak_50ms_t64`` for
the long run that measures RSS growth (full run only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import loadgen, procstats, profile, report
from bench.ceiling import run_ceiling
from bench.harness import Bench
from bench.otp_under_bulk import run_otp_under_bulk
from bench.plan import CAMPAIGN_WORKDIR, FULL, OTP_THREADS, QUICK, SCENARIOS, Plan, scaled
from bench.rows import Result
from bench.runinfo import ROOT, code_state, dump, machine, machine_line
from bench.targets import target_lines


def run_sandbox(bench: Bench, plan: Plan) -> list[Result]:
    out = []
    for latency, connections in zip((0, 50), plan.sandbox_connections, strict=True):
        bench.reset(latency_ms=latency)
        cpu0 = procstats.cpu_seconds(bench.sandbox_pid)
        load = loadgen.run(bench.sandbox_url, seconds=plan.sandbox_s, connections=connections)
        cpu = procstats.cpu_seconds(bench.sandbox_pid) - cpu0
        out.append(
            Result(
                name=f"sandbox_{latency}ms",
                system="sandbox",
                latency_ms=latency,
                processes=1,
                messages=load.requests,
                msgs_per_s=load.per_s,
                p50_ms=load.p50_ms,
                p99_ms=load.p99_ms,
                cpu_s_per_1k=cpu / max(1, load.requests) * 1000,
                peak_rss_mb=procstats.status_kb(bench.sandbox_pid, "VmHWM") / 1024,
                details={"tool": load.tool, "errors": load.errors, "seconds": load.seconds},
            )
        )
    bench.reset(latency_ms=0)
    return out


def run_profiles(bench: Bench, plan: Plan, out_dir: Path) -> dict[str, Any]:
    """Sample the worker's GIL holder while it drains; not a measured run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles: dict[str, Any] = {}
    if profile.py_spy() is None:
        return {"error": "py-spy not installed (pip install py-spy)"}
    # Counts sized so that each drain outlasts the two recordings.
    for system, threads, latency, messages in (
        ("project", 96, 50, int(1_200 * (plan.profile_s + 8))),
        ("baseline", 8, 50, int(160 * (plan.profile_s + 8))),
        ("project", 8, 0, int(1_100 * (plan.profile_s + 8))),
        ("baseline", 8, 0, int(1_100 * (plan.profile_s + 8))),
    ):
        key = f"{system}_t{threads}_{latency}ms"
        raw = out_dir / f"{key}.txt"
        speedscope = out_dir / f"{key}.speedscope.json"

        def sample(pids: list[int], raw: Path = raw, speedscope: Path = speedscope) -> None:
            # Two recordings of the same drain: collapsed stacks, then speedscope.
            half = max(2.0, plan.profile_s / 2)
            profile.record(pids[0], seconds=half, out_raw=raw)
            profile.record(
                pids[0], seconds=half, out_raw=raw.with_suffix(".tmp"), out_speedscope=speedscope
            )
            raw.with_suffix(".tmp").unlink(missing_ok=True)

        result = bench.run_workers(
            name=f"profile_{key}",
            system=system,
            latency_ms=latency,
            messages=messages,
            threads=threads,
            on_running=sample,
        )
        summary = profile.summarise(raw) if raw.exists() else {"samples": 0}
        summary["cpu_s_per_1k_while_profiled"] = round(result.cpu_s_per_1k or 0, 3)
        summary["msgs_per_s_while_profiled"] = round(result.msgs_per_s or 0, 1)
        summary["speedscope"] = str(speedscope.relative_to(ROOT))
        profiles[key] = summary
    return profiles


def median_run(runs: list[Result]) -> Result:
    """The run of median throughput (the lower middle of an even count), with every
    round's ``msgs_per_s``, in the order run, in its details."""
    ordered = sorted(runs, key=lambda r: r.msgs_per_s or 0)
    median = ordered[(len(ordered) - 1) // 2]
    if len(runs) > 1:
        median.details["rounds_msgs_per_s"] = [round(r.msgs_per_s or 0, 1) for r in runs]
    return median


def campaign_result(row: dict[str, Any], extras: dict[str, Any]) -> Result:
    """A campaign scenario's row (bench/campaign_bench.py) as a harness result."""
    names = {f.name for f in fields(Result)} - {"details"}
    known = {k: v for k, v in row.items() if k in names}
    return Result(**known, details={**extras, **{k: v for k, v in row.items() if k not in names}})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small counts; under 60 s")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {SCENARIOS}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--profile", action="store_true", help="also profile (default: full run)")
    parser.add_argument("--redis-url", default=None, help="use this Redis (default: a private one)")
    parser.add_argument(
        "--drain-rounds", type=int, default=None, metavar="N",
        help="rounds of the prefilled drains, each row the median (default: 3, quick 1)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    console = Console(width=None if sys.stdout.isatty() else 160)
    plan = QUICK if args.quick else FULL
    if args.scale != 1.0:
        plan = scaled(plan, args.scale)
    if args.drain_rounds is not None:
        if args.drain_rounds < 1:
            parser.error("--drain-rounds: must be at least 1")
        plan = dataclasses.replace(plan, drain_rounds=args.drain_rounds)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"--only: unknown scenario(s) {sorted(unknown)}")
    wanted: Callable[[str], bool] = lambda s: (s in only) if only else True  # noqa: E731
    do_profile = (args.profile or not args.quick) and wanted("profile")

    command = "python -m bench" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    started = time.monotonic()
    code = code_state()
    results: list[Result] = []
    details: dict[str, Any] = {}

    def add(result: Result) -> None:
        results.append(result)
        console.print(report.one_line(result))

    with Bench(log=lambda s: console.print(f"[dim]{s}[/dim]"), redis_url=args.redis_url) as bench:
        if wanted("sandbox"):
            for r in run_sandbox(bench, plan):
                add(r)
        if wanted("enqueue"):
            for system in ("project", "baseline"):
                add(bench.run_enqueue(system=system, messages=plan.enqueue))
        for scenario, counts, latency in (
            ("sms_50ms", plan.sms_50ms, 50),
            ("sms_0ms", plan.sms_0ms, 0),
        ):
            if not wanted(scenario):
                continue
            for (system, threads), messages in counts.items():
                add(
                    bench.run_workers(
                        name=f"{scenario}_t{threads}",
                        system=system,
                        latency_ms=latency,
                        messages=messages,
                        threads=threads,
                    )
                )
        if wanted("sms_50ms_2proc"):
            # Prefilled, 1 and 2 processes: with workers first, the producer in this
            # process starves next to two busy workers on 2 cores and sets the pace.
            for threads, messages in plan.two_proc.items():
                for processes, name in ((1, "sms_50ms_prefill"), (2, "sms_50ms_2proc")):
                    add(
                        bench.run_workers(
                            name=f"{name}_t{threads}",
                            system="project",
                            latency_ms=50,
                            messages=messages,
                            processes=processes,
                            threads=threads,
                            prefill=True,
                        )
                    )
        if wanted("drain"):
            # Throughput with no producer competing for the 2 cores: all N enqueued
            # first, the clock starting when the workers are ready (as the 2-process pair).
            rounds: dict[tuple[str, int, int], list[Result]] = {}
            for n in range(plan.drain_rounds):
                for (system, latency, threads), messages in plan.drain.items():
                    if system == "ceiling":
                        run = run_ceiling(
                            bench, threads=threads, latency_ms=latency, messages=messages
                        )
                    else:
                        run = bench.run_workers(
                            name=f"drain_{latency}ms_t{threads}",
                            system=system,
                            latency_ms=latency,
                            messages=messages,
                            threads=threads,
                            prefill=True,
                        )
                    rounds.setdefault((system, latency, threads), []).append(run)
                    if plan.drain_rounds > 1:
                        console.print(f"[dim]round {n + 1}:{report.one_line(run)}[/dim]")
            for runs in rounds.values():
                add(median_run(runs))
        if plan.otp_bulk and wanted("otp_under_bulk"):
            add(
                run_otp_under_bulk(
                    bench,
                    bulk=plan.otp_bulk,
                    otp_per_s=20,
                    otp_seconds=plan.otp_seconds,
                    warmup_s=plan.otp_warmup_s,
                    threads=OTP_THREADS,
                )
            )
        if plan.soak and wanted("soak"):
            add(
                bench.run_workers(
                    name="soak_50ms_t64",
                    system="project",
                    latency_ms=50,
                    messages=plan.soak,
                    threads=64,
                    timeout_s=900,
                    rss_interval_s=1.0,
                )
            )
        if wanted("ratelimit") and plan.ratelimit_s:
            from bench.adaptive import run_all

            # The adaptive limiter beside the AIMD it replaced: a provider limit and
            # random throttles (bench/adaptive.py; docs/ratelimit.md).
            bench.reset(latency_ms=0)
            for r in run_all(
                sandbox_url=bench.sandbox_url, redis_url=bench.redis_url,
                seconds=plan.ratelimit_s, warmup_s=plan.ratelimit_warmup_s,
                recovery_s=plan.ratelimit_recovery_s,
                log=lambda s: console.print(f"[dim]{s}[/dim]"),
            ):  # fmt: skip
                add(r)
            bench.reset(latency_ms=0)
        if wanted("campaign"):
            from bench.campaign_bench import run_campaign_scenarios

            extras: dict[str, Any] = {}
            rows = run_campaign_scenarios(
                quick=args.quick, redis_url=bench.redis_url, workdir=CAMPAIGN_WORKDIR,
                details=extras, log=lambda s: console.print(f"[dim]{s}[/dim]"),
            )  # fmt: skip
            for row in rows:
                add(campaign_result(row, extras.get(f"{row['name']}/{row['system']}", {})))
        if wanted("console") and plan.console_jobs:
            from bench.console_bench import run_console

            for r in run_console(
                bench.redis_url, jobs=plan.console_jobs, campaigns=plan.console_campaigns,
                samples=plan.console_samples, log=lambda s: console.print(f"[dim]{s}[/dim]"),
            ):  # fmt: skip
                add(r)
        if do_profile:
            console.print("[dim]profiling (py-spy --gil) ...[/dim]")
            details["profiles"] = run_profiles(bench, plan, ROOT / "bench" / "profiles")

    elapsed = time.monotonic() - started
    m = machine()
    data = {
        "machine": machine_line(m),
        "command": command,
        "scenarios": [r.row() for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    dump(args.out, data)
    details.update(
        {
            "elapsed_s": round(elapsed, 1),
            "machine": m,
            "code": code,
            "command": command,
            "scenarios": {f"{r.name}/{r.system}": r.details for r in results},
        }
    )
    dump(args.out.with_name("details.json"), details)
    console.print(report.table(results))
    for line in target_lines(results, details):
        console.print(line)
    console.print(f"[dim]{len(results)} scenarios in {elapsed:.0f} s; wrote {args.out}[/dim]")
    if not args.no_docs:
        path = report.update_docs(ROOT / "docs" / "benchmarks.md", data, details, results)
        console.print(f"[dim]updated {path}[/dim]")
    json.dumps(data)  # the shape is JSON-serialisable by construction
    return 0
