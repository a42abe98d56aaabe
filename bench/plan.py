"""What ``python -m bench`` runs, and how big: the full and the quick plan."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Plan:
    """Message counts and durations; ``--quick`` shrinks them to fit in under a minute."""

    sandbox_s: float
    enqueue: int
    sms_50ms: dict[tuple[str, int], int]  # (system, threads) -> messages
    sms_0ms: dict[tuple[str, int], int]
    two_proc: dict[int, int]  # threads -> messages
    soak: int  # 0: skip
    profile_s: float  # 0: skip
    # Prefilled drains, (system, latency ms, threads) -> messages: the throughput
    # targets. System "ceiling" is bench.ceiling (a row of system "baseline").
    drain: dict[tuple[str, int, int], int] = field(default_factory=dict)
    otp_bulk: int = 0  # bulk backlog of the OTP-under-bulk run; 0: skip
    otp_seconds: float = 0  # how long OTPs are sent (20/s) while it drains
    otp_warmup_s: float = 3.0  # from workers ready to the first OTP (the backlog draining)
    # Load generator connections of sandbox_0ms and sandbox_50ms. Without wrk the
    # Python generator opens them one by one and its last requests outlast the
    # window by seconds (p99 5.8 s at 256): fewer in a quick run.
    sandbox_connections: tuple[int, int] = (32, 256)
    # Rounds of the prefilled drains, interleaved: each row is the median round (the
    # box is shared; a single drain landed 999 and 1,160 msg/s in two runs of one code).
    drain_rounds: int = 1
    # The adaptive rate limiter (bench.adaptive): seconds of sending per scenario and
    # system, the first warmup_s of them not counted; the recovery scenario's length
    # (0: skip).
    ratelimit_s: float = 25.0
    ratelimit_warmup_s: float = 5.0
    ratelimit_recovery_s: float = 0.0
    # The console's reads (bench.console_bench): job records loaded, campaigns, and
    # calls timed per read (issue 22: 1,000,000 records and 50 campaigns).
    console_jobs: int = 1_000_000
    console_campaigns: int = 50
    console_samples: int = 400


FULL = Plan(
    sandbox_s=10,
    enqueue=10_000,
    sms_50ms={
        ("baseline", 8): 3_000,
        ("project", 8): 3_000,
        ("project", 32): 5_000,
        ("project", 64): 6_000,
        ("project", 96): 8_000,
        ("baseline", 64): 8_000,
    },
    sms_0ms={("baseline", 8): 6_000, ("project", 8): 4_000, ("project", 64): 4_000},
    # 64 threads: each process CPU-bound (the verdict). 32 (the default): each
    # process bound by its threads, as a pod at default settings; shown beside.
    two_proc={64: 8_000, 32: 6_000},
    soak=40_000,
    profile_s=16,
    drain={
        ("baseline", 50, 8): 2_000,
        ("project", 50, 32): 5_000,
        # Measured with the scripts auto-pipelined (removed in issue 19): 96 best
        # (48: 816-854 msg/s, 64: 955-1,004, 96: 1,073-1,180, 128-160 no better).
        ("project", 50, 64): 6_000,
        ("project", 50, 96): 8_000,
        # Dramatiq alone on the project's broker, an actor that only sleeps 50 ms
        # (bench.ceiling): what the send path's 96 threads could reach at best.
        ("ceiling", 50, 96): 8_000,
        ("baseline", 0, 8): 4_000,
        # At 0 ms, with the scripts auto-pipelined (removed in issue 19), 8 to 32
        # threads did best (4: 879-924 msg/s, 8: 998-1,087, 16: 979-1,099, 32: 976-1,133).
        ("project", 0, 8): 4_000,
        ("project", 0, 16): 4_000,
        ("project", 0, 32): 4_000,
    },
    otp_bulk=100_000,
    otp_seconds=20,
    drain_rounds=3,
    ratelimit_s=25.0,
    ratelimit_warmup_s=5.0,
    ratelimit_recovery_s=40.0,
)
QUICK = Plan(
    sandbox_s=1,
    enqueue=1_000,
    # The baseline at 50 ms tops out at 160 msg/s (8 threads): 200 is 1.3 s of it.
    sms_50ms={("baseline", 8): 200, ("project", 64): 600},
    sms_0ms={("baseline", 8): 500, ("project", 64): 500},
    two_proc={64: 600},
    soak=0,
    profile_s=0,
    drain={
        ("baseline", 50, 8): 200,
        ("project", 50, 32): 600,
        ("ceiling", 50, 32): 600,
        ("baseline", 0, 8): 500,
        ("project", 0, 16): 500,
    },
    otp_bulk=3_000,
    otp_seconds=3,
    otp_warmup_s=1.5,
    sandbox_connections=(32, 64),
    # 6 runs of 4 s: about 30 s of the quick run.
    ratelimit_s=4.0,
    ratelimit_warmup_s=1.5,
    console_jobs=5_000,
    console_samples=100,
)
SCENARIOS = (
    "sandbox",
    "enqueue",
    "sms_50ms",
    "sms_0ms",
    "sms_50ms_2proc",
    "drain",
    "otp_under_bulk",
    "soak",
    "campaign",
    "console",
    "ratelimit",
    "profile",
)
#: The campaign scenarios' generated CSV files live here between runs (1M rows: ~30 MB).
CAMPAIGN_WORKDIR = Path(tempfile.gettempdir()) / "cw-campaign-bench"
#: Threads per process of the OTP-under-bulk run: the worker's default (WORKER_THREADS).
OTP_THREADS = 32


def scaled(plan: Plan, factor: float) -> Plan:
    """``plan`` with every message count times ``factor`` (at least 50) and the sandbox
    window too (at least 1 s); the rest (durations, rounds, connections) as they are."""

    def n(x: int) -> int:
        return max(50, int(x * factor))

    return dataclasses.replace(
        plan,
        sandbox_s=max(1.0, plan.sandbox_s * factor),
        enqueue=n(plan.enqueue),
        sms_50ms={k: n(v) for k, v in plan.sms_50ms.items()},
        sms_0ms={k: n(v) for k, v in plan.sms_0ms.items()},
        two_proc={k: n(v) for k, v in plan.two_proc.items()},
        soak=n(plan.soak) if plan.soak else 0,
        drain={k: n(v) for k, v in plan.drain.items()},
        otp_bulk=n(plan.otp_bulk) if plan.otp_bulk else 0,
    )
