"""Campaign benchmarks (issues #4 and #5): accepting a list, and sending it through v1 bulk.

``python -m bench.campaign_bench [--quick]`` prints a table and writes
``bench/campaign_results.json``; :func:`run_campaign_scenarios` returns the
same rows for ``python -m bench``. Rows have the fields of
``bench/results.json`` (null where not measured) plus ``seconds`` (the
measured wall time) and, where it matters, ``note``.

Scenarios (full size; ``--quick`` runs 1/20 of each):

``campaign_accept_csv`` (project)
    ``CampaignProducer(settings).send(csv, CampaignOptions(name=..., text="Hola {name}",
    deliver_at=tomorrow))`` for a 1,000,000-recipient CSV (``dst_number,name``,
    distinct valid Chilean mobiles, generated once into the work directory), no
    balance lookup. Targets: ≤ 30 s, ≤ 300 B of Redis per pending recipient.
``campaign_accept_naive`` (baseline)
    What a user writes instead (:mod:`bench.campaign_baseline`): ``csv.DictReader``
    and one ``send_with_options(..., delay=<until tomorrow>)`` per recipient on a
    plain Dramatiq ``RedisBroker`` actor (never consumed). At about 5,000
    messages/s a million would take minutes, so it runs on the first 200,000
    rows and ``messages`` says so. Target: the project >= 5x its rate.
``campaign_sandbox_bulk`` (sandbox)
    The ceiling: the sandbox alone under concurrent ``POST /api_v1/send_sms_bulk``
    of 1,000 messages each (asyncio + httpx, the worker's form encoding), for
    10 s. ``msgs_per_s`` counts recipients (requests/s x 1,000).
``campaign_v1_bulk`` / ``campaign_v1_bulk_2proc`` (project)
    End to end: a 100,000-recipient campaign due now, through a
    :class:`devtools.stack.LocalStack` (real sandbox, latency 0; ``connectus
    worker`` with 1, then 2 processes, 8 threads), from ``send`` to state
    ``finished``. Rate limits lifted, ``CAMPAIGN_MAX_PENDING=50000``; the
    sandbox's status steps are slowed to an hour so that its scheduler does not
    compete for the CPU. Afterwards the sandbox ledger
    (``/_sandbox/ledger/summary``) must show N charges and no recipient charged
    twice. Target: ≥ 20,000 recipients/s.

Method. The two accept scenarios each run in a child process
(``--child``), so that CPU (``time.process_time`` around the call), peak RSS
(the child's ``VmHWM``) and Redis figures belong to that call alone.
``redis_cmds_per_msg`` is the ``INFO commandstats`` delta over the call
divided by the recipients (commands inside Lua scripts count, as in
``bench/results.json``); ``redis_bytes_per_recipient`` the ``used_memory``
delta divided by them (accept: what a pending recipient costs; bulk: what
stays per sent recipient, job records included). On a Redis shared with other
clients both are polluted by them: the accept rows also give the exact
``MEMORY USAGE`` of their own keys in the details. The bulk rows' CPU is the
worker supervisor and its children; the sandbox's and Redis's are in the
details, as cores used, to show what saturates. Every key written is under a
fresh ``KEY_PREFIX`` / namespace and deleted afterwards (never FLUSHALL).
By default the CLI starts a private ``redis-server``; ``--redis-url`` uses
another one.

Modules: this one (sizes, the whole set, the command line),
:mod:`bench.campaign_accept` and :mod:`bench.campaign_bulk` (the scenarios),
:mod:`bench.campaign_common` (rows, Redis snapshots and prefixes, the input CSV) and
:mod:`bench.campaign_report` (table, targets, run metadata).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.campaign_accept import accept_naive, accept_project, child_accept, child_naive
from bench.campaign_bulk import sandbox_bulk, v1_bulk
from bench.campaign_common import ROOT, recipients_csv
from bench.campaign_report import one_line, table, target_lines
from bench.runinfo import code_state, machine, machine_line

RESULTS = ROOT / "bench" / "campaign_results.json"


@dataclass(frozen=True)
class Sizes:
    accept: int  # recipients accepted by the project
    naive: int  # rows the naive baseline enqueues (a prefix of the same file)
    bulk: int  # recipients of each end-to-end campaign
    sandbox_s: float  # duration of the sandbox-alone load
    bulk_processes: tuple[int, ...]  # worker processes of the end-to-end runs


FULL = Sizes(accept=1_000_000, naive=200_000, bulk=100_000, sandbox_s=10.0, bulk_processes=(1, 2))
QUICK = Sizes(accept=50_000, naive=5_000, bulk=5_000, sandbox_s=1.0, bulk_processes=(1,))
SCENARIOS = ("accept", "naive", "sandbox", "bulk")

# -- the whole set ------------------------------------------------------------------------


def run_campaign_scenarios(
    *,
    quick: bool,
    redis_url: str,
    workdir: Path,
    only: set[str] | None = None,
    details: dict[str, Any] | None = None,
    sizes: Sizes | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run the campaign scenarios against ``redis_url``; rows as in ``bench/results.json``.

    ``workdir`` keeps the generated CSV files between runs (and the stack logs).
    ``only`` restricts to some of :data:`SCENARIOS`; ``details``, if given, is
    filled with per-scenario extras keyed ``"<name>/<system>"``; ``sizes``
    overrides :data:`FULL` / :data:`QUICK` (the smoke test runs tiny ones).
    """
    sizes = sizes or (QUICK if quick else FULL)

    def wanted(scenario: str) -> bool:
        return not only or scenario in only

    workdir.mkdir(parents=True, exist_ok=True)
    extras: dict[str, Any] = details if details is not None else {}
    rows: list[dict[str, Any]] = []

    def add(result: tuple[dict[str, Any], dict[str, Any]]) -> None:
        row, more = result
        # The machine may be shared: the load average says how much.
        more["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        extras[f"{row['name']}/{row['system']}"] = more
        log(one_line(row))

    if wanted("accept") or wanted("naive"):
        recipients_csv(workdir, sizes.accept)
    if wanted("accept"):
        add(accept_project(redis_url=redis_url, workdir=workdir, n=sizes.accept))
    if wanted("naive"):
        add(accept_naive(redis_url=redis_url, workdir=workdir, n=sizes.accept, limit=sizes.naive))
    _compare_accept(rows)
    if wanted("sandbox"):
        add(sandbox_bulk(redis_url=redis_url, workdir=workdir, seconds=sizes.sandbox_s))
    if wanted("bulk"):
        for processes in sizes.bulk_processes:
            add(
                v1_bulk(
                    redis_url=redis_url, workdir=workdir, n=sizes.bulk, processes=processes,
                    log=log,
                )
            )  # fmt: skip
    return rows


def _compare_accept(rows: list[dict[str, Any]]) -> None:
    """Note the project's accept rate as a multiple of the naive baseline's (same run)."""
    by_name = {r["name"]: r for r in rows}
    project, naive = by_name.get("campaign_accept_csv"), by_name.get("campaign_accept_naive")
    if project is None or naive is None or not naive["msgs_per_s"]:
        return
    ratio = project["msgs_per_s"] / naive["msgs_per_s"]
    project["note"] = f"{ratio:.1f}x the naive baseline's rate (same run)"


# -- command line -------------------------------------------------------------------------


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    """``url`` as given, or a private ``redis-server`` for the run."""
    if url:
        yield url
        return
    from devtools.embedded_redis import RedisServer

    exe = shutil.which("redis-server")
    server = RedisServer(executable=exe) if exe else RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


def _child_main(args: argparse.Namespace) -> int:
    path = Path(args.csv)
    if args.child == "accept":
        data = child_accept(args.redis_url, args.prefix, path, profile=args.profile)
    elif args.child == "naive":
        data = child_naive(args.redis_url, args.prefix, path, args.limit)
    else:
        raise SystemExit(f"unknown child {args.child!r}")
    Path(args.child_out).write_text(json.dumps(data))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.campaign_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1/20 of every size")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {SCENARIOS}")
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "cw-campaign-bench",
        help="where the generated CSV files are kept between runs",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one accept (top 15 cumulative)"
    )
    parser.add_argument(
        "--profile-bulk", type=float, default=0, metavar="S",
        help="py-spy the first worker for S seconds during a 1-process bulk run",
    )  # fmt: skip
    # internal: one accept scenario in a child process
    parser.add_argument("--child", choices=("accept", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args)

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - set(SCENARIOS):
        parser.error(f"--only: unknown scenario(s) {sorted(only - set(SCENARIOS))}")
    sizes = QUICK if args.quick else FULL
    command = "python -m bench.campaign_bench" + (
        " " + " ".join(sys.argv[1:]) if argv is None else ""
    )
    started = time.monotonic()
    code_at_start = code_state()
    details: dict[str, Any] = {}
    with _redis(args.redis_url) as url:
        print(f"redis {url}, workdir {args.workdir}", flush=True)
        rows = run_campaign_scenarios(
            quick=args.quick, redis_url=url, workdir=args.workdir, only=only or None,
            details=details, log=lambda s: print(s, flush=True),
        )  # fmt: skip
        if args.profile:
            n = sizes.accept if args.quick else sizes.accept // 5
            _, more = accept_project(redis_url=url, workdir=args.workdir, n=n, profile=True)
            details["profile_accept"] = {"recipients": n, "top15_cumulative": more["profile"]}
            print(f"\ncProfile of one accept ({n:,} recipients), top 15 cumulative:")
            print(more["profile"])
        if args.profile_bulk > 0:
            _, more = v1_bulk(
                redis_url=url, workdir=args.workdir, n=sizes.bulk, processes=1,
                profile_s=args.profile_bulk, log=lambda s: print(s, flush=True),
            )  # fmt: skip
            details["profile_bulk"] = more.get("profile", {"error": "py-spy recorded nothing"})
            print(json.dumps(details["profile_bulk"], indent=1))
    elapsed = time.monotonic() - started
    data = {
        "machine": machine_line(machine()),
        "command": command,
        "code": code_at_start,
        "code_at_end": code_state(),
        "elapsed_s": round(elapsed, 1),
        "scenarios": rows,
        "details": details,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print()
    print(table(rows))
    print()
    for line in target_lines(rows):
        print(line)
    load = os.getloadavg()
    print(
        f"\n{len(rows)} scenarios in {elapsed:.0f} s (load average now {load[0]:.1f} on "
        f"{os.cpu_count()} CPUs); wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
