"""The chaos harness: N SMS through a real stack while processes and Redis are killed.

``run_chaos(n, plan, workdir=...)`` starts

- a private ``redis-server`` with an AOF fsynced on every write (``appendfsync
  always``), so a SIGKILL of Redis followed by a restart on the same port loses
  nothing that Redis acknowledged;
- ``connectus sandbox`` with the plan's faults (5xx, 429, ESME_RTHROTTLED,
  answers dropped after the message was accepted and charged, latency);
- ``connectus worker``: a supervisor with ``plan.processes`` children of
  ``plan.threads`` threads each, with fast durable retries and a fast broker
  maintenance so that a SIGKILLed child's messages come back in seconds;

then producer threads submit N SMS, each with a unique idempotency key and a
content that carries the key (so the sandbox ledger's ``content_sha256`` names
the key), 10% of them twice. Meanwhile a controller thread, seeded, SIGKILLs
worker children and kills/restarts Redis at random instants, chosen as random
fractions of the sandbox's charge count so that the chaos always lands while
work is in flight, whatever the machine's speed.

It then waits (bounded, with a stall detector) until every job is settled, and
returns a :class:`ChaosReport`: the counts, the per-key charges from the
sandbox ledger, and :meth:`ChaosReport.problems`, the list of broken promises
(double charges, lost keys, duplicate submissions answered with another job
id, a run over its time bound). The tests assert that list is empty.

The harness judges by the sandbox's charge ledger (what the customer pays),
never by the worker's say-so; job records are read only to tell *why* a key
was not charged (dead letter or review, with a reason).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from connectus_worker.domain.hashing import content_hash
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from devtools.embedded_redis import RedisServer
from devtools.stack import LocalStack
from tests.support.sentinel import SentinelCluster
from tests.support.stack_checks import child_pids
from tests.support.waiting import wait_for

# A job is settled when it is in one of these states, or in the review set.
# ``unknown`` is not settled: the reconciler (worker/reconcile.py) must turn it
# into ``sent`` (found at Connectus), re-queue it, or put it up for review.
TERMINAL = frozenset({"sent", "failed"})

# Settings of the stack under test: quick in-process retries, quick durable
# retries, broker maintenance every second and a 5 s heartbeat timeout, so a
# SIGKILLed child's messages are re-queued within ~6 s; a quick reconciler.
# Limits that exist to protect the real Connectus (shared rate limiter, per-
# destination cap) are lifted: the run measures delivery, not politeness.
# Unknown settings are ignored by load_settings, so naming settings that land
# later (the reconciler's) is harmless.
CHAOS_ENV: dict[str, str] = {
    "RETRY_ATTEMPTS": "2",
    "RETRY_INITIAL_BACKOFF_MS": "20",
    "RETRY_MAX_BACKOFF_MS": "200",
    "DURABLE_MIN_BACKOFF_MS": "200",
    "DURABLE_MAX_BACKOFF_MS": "2000",
    "DURABLE_MAX_RETRIES": "30",
    "BROKER_MAINTENANCE_INTERVAL_S": "1",
    "BROKER_HEARTBEAT_TIMEOUT_S": "5",
    "WORKER_SHUTDOWN_GRACE_S": "10",
    "CONNECTUS_CONNECT_TIMEOUT_S": "2",
    "CONNECTUS_READ_TIMEOUT_S": "5",
    # Requests are tiny; a short write timeout keeps the send lease (which
    # counts it) and so the wait for a killed worker's sends short.
    "CONNECTUS_WRITE_TIMEOUT_S": "1",
    "RECONCILE_AFTER_S": "1",
    "RECONCILE_WINDOW_S": "3",
    "RECONCILE_INTERVAL_S": "0.5",
    "RATE_SMS_PER_S": "100000",
    "RATE_SMS_BURST": "100000",
    # The sandbox's 429s are random draws, not a real rate limit: the adaptive
    # limiter takes 6 % of them for noise, and a high floor keeps an unlucky
    # verdict from slowing the run. The adaptation has tests and a benchmark of
    # its own (docs/ratelimit.md).
    "RATE_MIN_PER_S": "5000",
    "RATE_OTP_PER_S": "100000",
    "RATE_EMAIL_PER_S": "100000",
    "RATE_WHATSAPP_PER_S": "100000",
    "DST_CAP_COUNT": "0",
    "BREAKER_OPEN_S": "1",
    "BREAKER_MAX_OPEN_S": "4",
    "LOG_LEVEL": "INFO",
}


# TTL of the reconciler's Redis lock (worker/reconcile.py, lock_ttl_s).
RECONCILE_LOCK_S = 15


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong during a run. Rates are per send request (0..1)."""

    error_rate: float = 0.03  # HTTP 500/502/503/504; half the 500/504 charged first
    rate_429: float = 0.03
    throttle_rate: float = 0.03  # ESME_RTHROTTLED
    drop_rate: float = 0.01  # accepted and charged, then the connection dropped
    latency_ms: float = 5
    jitter_ms: float = 5
    worker_kills: int = 3  # SIGKILLs of worker children
    redis_outages: int = 1  # SIGKILL of redis-server, restarted after redis_down_s
    redis_down_s: float = 1.5
    # The Redis outages are failovers instead: a primary, a replica and three
    # sentinels (tests/support/sentinel.py); the replica's link is cut, the primary
    # is SIGKILLed, Sentinel promotes the replica, the old primary rejoins as a
    # replica; every process finds the primary through Sentinel and confirms
    # claims on 1 replica (WAIT).
    failover: bool = False
    processes: int = 3
    threads: int = 8
    producers: int = 4
    duplicate_share: float = 0.10
    chaos_window: tuple[float, float] = (0.05, 0.80)  # chaos lands between these fractions
    seed: int = 20240601
    # LEASE_MARGIN_S of the workers (s): a killed worker's in-flight sends are
    # reconciled only after their lease, so it bounds how long a run waits.
    lease_margin_s: float = 30.0
    # The sandbox's answer mode: "chosen" (ids in send answers) or "documented"
    # (exactly the collection's {"status": "ESME_ROK"}: every id looked up later).
    answers: str = "chosen"

    def sandbox_flags(self) -> dict[str, object]:
        return {
            "answers": self.answers,
            "error_rate": self.error_rate,
            "rate_429": self.rate_429,
            "retry_after_s": 1,
            "throttle_rate": self.throttle_rate,
            "drop_rate": self.drop_rate,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "seed": self.seed,
        }

    def time_bound_s(self, n: int) -> float:
        """A generous but finite bound on the whole run (start to all settled).

        Throughput floor of 50 sends/s (the sandbox alone does ~1,000/s here);
        each SIGKILL costs at most heartbeat + maintenance (6 s) plus the
        supervisor's respawn backoff; each Redis outage its downtime plus
        reconnection backoffs; ambiguous sends wait RECONCILE_AFTER_S +
        RECONCILE_WINDOW_S, a few passes in a row, plus RECONCILE_LOCK_S when
        the pass holding the reconciler's lock was cut short by a kill or the
        outage (the lock then lives out its TTL); durable retries up to
        DURABLE_MAX_BACKOFF_MS a few times in a row; start-up 20 s.
        """
        return (
            20
            + n / 50
            + self.worker_kills * 15
            + self.redis_outages * (self.redis_down_s + 20)
            + 3 * (1 + 3)
            + (RECONCILE_LOCK_S if self.worker_kills or self.redis_outages else 0)
            + 4 * 2
        )


@dataclass
class ChaosEvent:
    at_s: float
    kind: str  # "kill" | "redis_down" | "redis_up"
    detail: str


@dataclass
class ChaosReport:
    n: int
    plan: FaultPlan
    bound_s: float
    elapsed_s: float = 0.0
    settled: bool = False
    submit_errors: int = 0  # producer calls retried after a Redis error
    duplicates_submitted: int = 0
    duplicate_mismatches: list[str] = field(default_factory=list)
    charges_by_key: Counter[str] = field(default_factory=Counter)
    foreign_charges: int = 0  # charges whose content is none of ours
    states: Counter[str] = field(default_factory=Counter)
    unsettled: dict[str, str] = field(default_factory=dict)  # key -> state
    unsettled_detail: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # a sample, for the report
    dead_lettered: dict[str, str] = field(default_factory=dict)  # key -> reason
    reviewed: dict[str, str] = field(default_factory=dict)  # key -> reason
    events: list[ChaosEvent] = field(default_factory=list)
    sandbox_requests: dict[str, Counter[str]] = field(default_factory=dict)
    redis_keys: dict[str, int] = field(default_factory=dict)  # diagnostics
    log_events: Counter[str] = field(default_factory=Counter)
    log_dir: Path | None = None
    keys: list[str] = field(default_factory=list)
    # Jobs that became unknown because an accepted answer was unreadable (the old
    # reading of an id-less ESME_ROK); none is expected in either answer mode.
    malformed: dict[str, str] = field(default_factory=dict)
    id_lookups: Counter[str] = field(default_factory=Counter)  # provider_id_lookup values

    # -- figures ----------------------------------------------------------------

    @property
    def kills(self) -> int:
        return sum(e.kind == "kill" for e in self.events)

    @property
    def redis_outages(self) -> int:
        return sum(e.kind == "redis_down" for e in self.events)

    @property
    def charged(self) -> int:
        return sum(1 for k in self.keys if self.charges_by_key[k] >= 1)

    @property
    def double_charged(self) -> dict[str, int]:
        return {k: c for k, c in self.charges_by_key.items() if c > 1}

    @property
    def send_requests(self) -> int:
        return sum(sum(by.values()) for by in self.sandbox_requests.values())

    def status_count(self, status: str) -> int:
        return sum(by.get(status, 0) for by in self.sandbox_requests.values())

    @property
    def lost(self) -> list[str]:
        """Keys neither charged nor dead-lettered/reviewed with a reason."""
        return [
            k
            for k in self.keys
            if self.charges_by_key[k] == 0
            and not self.dead_lettered.get(k)
            and not self.reviewed.get(k)
        ]

    def problems(self) -> list[str]:
        """Every broken promise, in words; empty when the run is clean."""
        out: list[str] = []
        if doubles := self.double_charged:
            sample = dict(list(doubles.items())[:10])
            out.append(f"{len(doubles)} keys charged more than once: {sample}")
        if self.foreign_charges:
            out.append(f"{self.foreign_charges} charges for content we never submitted")
        if lost := self.lost:
            sample_states = {k: self.unsettled.get(k, "?") for k in lost[:10]}
            out.append(
                f"{len(lost)} keys lost (not charged, not dead-lettered/reviewed): {sample_states}"
            )
        charged_and_dead = [k for k in self.dead_lettered if self.charges_by_key[k]]
        if charged_and_dead:
            out.append(
                f"{len(charged_and_dead)} keys charged but dead-lettered (a replay would charge again): {charged_and_dead[:10]}"
            )
        if self.malformed:
            sample = dict(list(self.malformed.items())[:10])
            out.append(f"{len(self.malformed)} jobs unknown for an unreadable answer: {sample}")
        if self.duplicate_mismatches:
            out.append(
                f"duplicate submissions answered with another job id: {self.duplicate_mismatches[:10]}"
            )
        if not self.settled:
            out.append(
                f"{len(self.unsettled)} jobs not settled: {dict(Counter(self.unsettled.values()))}"
            )
        if self.elapsed_s > self.bound_s:
            out.append(f"run took {self.elapsed_s:.1f} s, over its bound of {self.bound_s:.0f} s")
        if self.kills < self.plan.worker_kills:
            out.append(f"only {self.kills} of {self.plan.worker_kills} worker kills happened")
        if self.redis_outages < self.plan.redis_outages:
            out.append(
                f"only {self.redis_outages} of {self.plan.redis_outages} Redis outages happened"
            )
        return out

    def table(self) -> str:
        p = self.plan
        rows = [
            ("messages (unique keys)", f"{self.n}"),
            ("duplicate submissions", f"{self.duplicates_submitted}"),
            ("producer calls retried (Redis down)", f"{self.submit_errors}"),
            ("processes x threads", f"{p.processes} x {p.threads}"),
            ("lease margin", f"{p.lease_margin_s:g} s"),
            (
                "fault plan",
                f"5xx {p.error_rate:.0%}, 429 {p.rate_429:.0%}, throttled {p.throttle_rate:.0%}, "
                f"dropped {p.drop_rate:.0%}, latency {p.latency_ms:g}±{p.jitter_ms:g} ms",
            ),
            ("charged exactly once", f"{sum(1 for k in self.keys if self.charges_by_key[k] == 1)}"),
            ("charged more than once", f"{len(self.double_charged)}"),
            (
                "dead-lettered (not charged)",
                f"{sum(1 for k in self.dead_lettered if not self.charges_by_key[k])}",
            ),
            (
                "in review (not charged)",
                f"{sum(1 for k in self.reviewed if not self.charges_by_key[k])}",
            ),
            ("lost", f"{len(self.lost)}"),
            ("final states", ", ".join(f"{s} {c}" for s, c in sorted(self.states.items()))),
            ("answers", p.answers),
            (
                "provider ids looked up",
                ", ".join(f"{s} {c}" for s, c in sorted(self.id_lookups.items())) or "none",
            ),
            ("unknown for an unreadable answer", f"{len(self.malformed)}"),
            ("worker SIGKILLs", f"{self.kills}"),
            ("Redis outages", f"{self.redis_outages} ({p.redis_down_s:g} s each)"),
            ("send requests at the sandbox", f"{self.send_requests}"),
            ("retries (requests - messages)", f"{self.send_requests - self.n}"),
            (
                "sandbox answers",
                ", ".join(
                    f"{s} {c}"
                    for s, c in sorted(
                        sum((Counter(v) for v in self.sandbox_requests.values()), Counter()).items()
                    )
                ),
            ),
            ("elapsed", f"{self.elapsed_s:.1f} s (bound {self.bound_s:.0f} s)"),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"  {name:<{width}}  {value}" for name, value in rows]
        events = [f"    {e.at_s:7.2f} s  {e.kind:<10} {e.detail}" for e in self.events]
        diag = [f"    {k}: {v}" for k, v in sorted(self.redis_keys.items()) if v]
        stuck = [f"    {k}: {d}" for k, d in self.unsettled_detail.items()]
        logs = [f"    {k}: {v}" for k, v in sorted(self.log_events.items())]
        return "\n".join(
            [
                "chaos run",
                *lines,
                "  chaos events:",
                *events,
                "  redis leftovers:",
                *diag,
                "  worker log events:",
                *logs,
                "  unsettled jobs (sample):",
                *stuck,
            ]
        )


def sms_content(key: str) -> str:
    """The SMS text of a key: unique, and names the key (so its digest names it)."""
    return f"Chaos {key}: su pedido fue despachado"


def destination(i: int) -> str:
    """A valid Chilean mobile number per message (``+56 9 8xxx xxxx``)."""
    return f"+5698{i % 10_000_000:07d}"


def _redis_retrying(
    call: Callable[[], Any], *, deadline_s: float, on_error: Callable[[], None]
) -> Any:
    """``call()``, retried while Redis is unreachable (a producer's honest behaviour:
    the idempotency key makes a repeated submission harmless)."""
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError):
            on_error()
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)  # backoff between attempts while Redis is down
            delay = min(1.0, delay * 2)


class _Sandbox:
    """The sandbox's admin API (it never goes down during the run)."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30.0)

    def charges_count(self) -> int:
        return int(self.client.get("/_sandbox/stats").json()["charges"])

    def stats(self) -> dict[str, Any]:
        return dict(self.client.get("/_sandbox/stats").json())

    def ledger(self) -> list[dict[str, Any]]:
        """Every charge, read page by page (``since``/``next``)."""
        charges: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self.client.get(
                "/_sandbox/ledger", params={"since": since, "limit": 5000}
            ).json()
            charges += page["charges"]
            if page["next"] >= page["total"] or not page["charges"]:
                return charges
            since = page["next"]

    def close(self) -> None:
        self.client.close()


class _Controller(threading.Thread):
    """Seeded chaos: SIGKILLs of worker children and a Redis outage, at random
    fractions of the expected charges (so they land while work is in flight)."""

    def __init__(
        self,
        *,
        n: int,
        plan: FaultPlan,
        stack: LocalStack,
        server: RedisServer | SentinelCluster,
        sandbox: _Sandbox,
        started: float,
        events: list[ChaosEvent],
    ) -> None:
        super().__init__(name="chaos-controller", daemon=True)
        self.n, self.plan, self.stack, self.server = n, plan, stack, server
        self.sandbox, self.started, self.events = sandbox, started, events
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        rng = random.Random(plan.seed)
        lo, hi = plan.chaos_window
        actions = ["kill"] * plan.worker_kills + ["redis"] * plan.redis_outages
        self.schedule = sorted((rng.uniform(lo, hi) * n, action) for action in actions)
        self.rng = rng

    def _note(self, kind: str, detail: str) -> None:
        self.events.append(ChaosEvent(time.monotonic() - self.started, kind, detail))

    def run(self) -> None:
        try:
            for threshold, action in self.schedule:
                # Await the instant (a condition: the sandbox's charge count), not a clock.
                while not self.stop_event.is_set() and self.sandbox.charges_count() < threshold:
                    self.stop_event.wait(0.02)
                if self.stop_event.is_set():
                    return
                if action == "kill":
                    self._kill_a_child()
                else:
                    self._redis_outage()
        except BaseException as exc:  # reported by the harness
            self.error = exc

    def _kill_a_child(self) -> None:
        assert self.stack.workers is not None
        supervisor = self.stack.workers.pid
        expected = self.plan.processes
        children = wait_for(
            lambda: c if len(c := child_pids(supervisor)) == expected else None,
            timeout_s=60,
            what=f"{expected} worker children",
        )
        victim = self.rng.choice(sorted(children))
        os.kill(victim, signal.SIGKILL)
        self._note("kill", f"worker child pid {victim} (charges {self.sandbox.charges_count()})")
        wait_for(
            lambda: len(c := child_pids(supervisor)) == expected and victim not in c,
            timeout_s=60,
            what="the supervisor to respawn the killed child",
        )
        self._note("respawned", f"children {sorted(child_pids(supervisor))}")

    def _failover(self, cluster: SentinelCluster) -> None:
        # The replica falls behind first (its link cut), so the primary dies holding
        # writes no replica has: what WAIT (REDIS_MIN_REPLICAS=1) must make harmless.
        cluster.cut_replication()
        log, before = self.stack.log_path("workers"), self.sandbox.charges_count()
        wait_for(lambda: "not confirmed by 1 replicas" in log.read_text()
                   or self.sandbox.charges_count() >= before + 100,
                   timeout_s=30, what="claims made while the replica is cut off")  # fmt: skip
        old = cluster.kill_primary()
        charges = self.sandbox.charges_count()
        self._note("redis_down", f"replica cut off, primary :{old} SIGKILLed (charges {charges})")
        new = cluster.wait_for_promotion(old)
        self._note("redis_up", f"replica :{new} promoted by Sentinel")
        cluster.rejoin(old)
        self._note("rejoined", f":{old} back as a replica of :{new}, in sync")

    def _redis_outage(self) -> None:
        if isinstance(self.server, SentinelCluster):
            self._failover(self.server)
            return
        # SIGKILL, not SIGSTOP: a crash is the harsher case (connections reset,
        # in-flight scripts either fsynced or never applied, script cache gone),
        # and it proves the fsynced AOF: nothing acknowledged may be lost.
        pid = self.server.pid
        self.server.kill()
        self._note(
            "redis_down",
            f"redis-server pid {pid} SIGKILLed (charges {self.sandbox.charges_count()})",
        )
        time.sleep(self.plan.redis_down_s)  # the deliberate outage
        self.server.restart()
        self._note("redis_up", f"redis-server pid {self.server.pid} on the same port, AOF replayed")


@contextmanager
def _stack(
    n: int, plan: FaultPlan, workdir: Path
) -> Iterator[tuple[RedisServer | SentinelCluster, LocalStack]]:
    (workdir / "redis").mkdir(parents=True, exist_ok=True)
    server: RedisServer | SentinelCluster
    if plan.failover:
        server = SentinelCluster(workdir / "redis")
    else:
        server = RedisServer(appendonly=True, dir=workdir / "redis")
    try:
        server.start()
        env = server.env if isinstance(server, SentinelCluster) else {}
        url = env.get("REDIS_URL", server.url if isinstance(server, RedisServer) else "")
        stack = LocalStack(
            redis_url=url,
            sandbox_flags=plan.sandbox_flags(),
            processes=plan.processes,
            threads=plan.threads,
            env={**CHAOS_ENV, "LEASE_MARGIN_S": str(plan.lease_margin_s), **env},
            log_dir=workdir,
        )
        with stack:
            yield server, stack
    finally:
        if isinstance(server, SentinelCluster):
            server.stop()
        else:
            server.close()


def _submit_all(
    n: int,
    plan: FaultPlan,
    producer: Producer,
    report: ChaosReport,
    job_ids: dict[str, str],
) -> None:
    """Producer threads: each key once, 10% twice (the repeat after the first returned)."""
    rng = random.Random(plan.seed + 1)
    keys = report.keys
    dup = set(rng.sample(range(n), int(n * plan.duplicate_share)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def count_error() -> None:
        with lock:
            report.submit_errors += 1

    def submit(i: int) -> str:
        key = keys[i]
        return str(
            _redis_retrying(
                lambda: producer.send_sms(destination(i), sms_content(key), idempotency_key=key),
                deadline_s=60,
                on_error=count_error,
            )
        )

    def work(part: int) -> None:
        local = random.Random(plan.seed + 100 + part)
        try:
            mine = list(range(part, n, plan.producers))
            ops: list[tuple[int, bool]] = [(i, False) for i in mine]
            # Each repeat goes somewhere after its first submission, in the same thread.
            for i in [i for i in mine if i in dup]:
                first = ops.index((i, False))
                ops.insert(local.randint(first + 1, len(ops)), (i, True))
            for i, again in ops:
                job_id = submit(i)
                if not again:
                    job_ids[keys[i]] = job_id
                    continue
                with lock:
                    report.duplicates_submitted += 1
                    if job_id != job_ids[keys[i]]:
                        report.duplicate_mismatches.append(
                            f"{keys[i]}: {job_ids[keys[i]]} then {job_id}"
                        )
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(part,), name=f"producer-{part}")
        for part in range(plan.producers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _settle(
    producer: Producer,
    job_ids: dict[str, str],
    report: ChaosReport,
    *,
    deadline: float,
    stall_s: float,
    controller: _Controller,
) -> dict[str, str]:
    """Poll job states until all are settled, the deadline passes, or no job has
    moved for ``stall_s`` after the chaos is over. Returns key -> state."""
    keys = Keys(producer.settings.key_prefix)
    client = producer.redis
    pending = dict(job_ids)  # key -> job id, not yet settled
    final: dict[str, str] = {}
    last_progress = time.monotonic()
    while True:
        try:
            pipe = client.pipeline(transaction=False)
            items = list(pending.items())
            for _key, job_id in items:
                pipe.hget(keys.job(job_id), "state")
                pipe.zscore(keys.review, job_id)
            answers = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.2)  # Redis is down (chaos); poll again
            continue
        moved = False
        for idx, (key, _job_id) in enumerate(items):
            raw, in_review = answers[2 * idx], answers[2 * idx + 1]
            state = raw.decode() if isinstance(raw, bytes) else str(raw)
            if in_review is not None:
                state = "review"
            if state in TERMINAL or state == "review":
                final[key] = state
                del pending[key]
                moved = True
            else:
                final[key] = state
        now = time.monotonic()
        if moved:
            last_progress = now
        if not pending:
            report.settled = True
            return final
        chaos_over = not controller.is_alive()
        if now > deadline or (chaos_over and now - last_progress > stall_s):
            report.unsettled = {k: final[k] for k in pending}
            return final
        time.sleep(0.25)  # poll interval


def _await_id_lookups(producer: Producer, *, timeout_s: float) -> None:
    """Wait (bounded) for the provider-id lookups of sends answered without an id
    (``answers=documented``): a job is ``sent`` before its id is known."""
    key = Keys(producer.settings.key_prefix).id_lookups
    deadline = time.monotonic() + timeout_s
    while producer.redis.zcard(key) and time.monotonic() < deadline:
        time.sleep(0.25)  # poll interval; the lookups run every RECONCILE_INTERVAL_S


def _collect(
    report: ChaosReport,
    producer: Producer,
    sandbox: _Sandbox,
    job_ids: dict[str, str],
    final: dict[str, str],
) -> None:
    digest_to_key = {content_hash(sms_content(k)): k for k in report.keys}
    for charge in sandbox.ledger():
        key = digest_to_key.get(charge["content_sha256"])
        if key is None:
            report.foreign_charges += 1
        else:
            report.charges_by_key[key] += 1
    stats = sandbox.stats()
    report.sandbox_requests = {
        route: Counter(by_status)
        for route, by_status in stats["requests"].items()
        if route.startswith("POST ") and "/_sandbox" not in route
    }
    keys = Keys(producer.settings.key_prefix)
    client = producer.redis
    pipe = client.pipeline(transaction=False)
    items = list(job_ids.items())
    for _key, job_id in items:
        pipe.hmget(keys.job(job_id), DETAIL_FIELDS)
        pipe.zscore(keys.dead_letters, job_id)
        pipe.zscore(keys.review, job_id)
    answers = pipe.execute()
    for idx, (key, _job_id) in enumerate(items):
        values, in_dlq, in_review = answers[3 * idx : 3 * idx + 3]
        detail = {f: v.decode() for f, v in zip(DETAIL_FIELDS, values, strict=True) if v}
        state_s = detail.get("state", "missing")
        error_class, last_error = values[1], values[2]
        reason = ": ".join(v.decode() for v in (error_class, last_error) if v)
        report.states["review" if in_review is not None else state_s] += 1
        if detail.get("provider_id_lookup"):
            report.id_lookups[detail["provider_id_lookup"]] += 1
        if detail.get("error_class") == "MalformedResponse":
            report.malformed[key] = reason
        if in_dlq is not None:
            report.dead_lettered[key] = reason
        if in_review is not None:
            report.reviewed[key] = reason or "in review"
        if key not in final or final[key] not in TERMINAL | {"review"}:
            report.unsettled.setdefault(key, state_s)
            if len(report.unsettled_detail) < 20:
                report.unsettled_detail[key] = {
                    "job_id": _job_id,
                    **detail,
                    "charges": str(report.charges_by_key[key]),
                }
    ns = keys.dramatiq_namespace
    for name in sorted(k.decode() for k in client.scan_iter(f"{ns}*", count=1000)):
        kind = client.type(name).decode()
        size = {
            "list": client.llen,
            "zset": client.zcard,
            "hash": client.hlen,
            "set": client.scard,
        }.get(kind)
        report.redis_keys[name.removeprefix(ns)] = int(size(name)) if size else 1
    for name in (keys.schedule, keys.dead_letters, keys.unknown, keys.review):
        report.redis_keys[name.removeprefix(keys.prefix)] = int(client.zcard(name))


DETAIL_FIELDS = [
    "state",
    "error_class",
    "last_error",
    "attempts",
    "worker",
    "lease_until",
    "updated_at",
    "provider_id_lookup",
]


def _log_events(log_path: Path) -> Counter[str]:
    """Counts of the worker log's notable events (JSON lines and Dramatiq's text)."""
    counts: Counter[str] = Counter()
    if not log_path.exists():
        return counts
    with log_path.open(errors="replace") as lines:
        for line in lines:
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                name = str(event.get("event", ""))
                if name == "job.skipped":
                    name = f"job.skipped:{event.get('claim')}"
                name = name.split("(job=")[0].split(" due to ")[0]
                if name in ("send.sent", "worker.started"):
                    continue
                if event.get("level") in ("warning", "error", "critical") or name.startswith(
                    ("job.", "supervisor.", "reconcile")
                ):
                    counts[name[:80]] += 1
            elif "Traceback" in line or "Error" in line or "Failed" in line:
                counts[line.strip()[:80]] += 1
    return counts


def run_chaos(
    n: int,
    plan: FaultPlan,
    *,
    workdir: Path,
    key_prefix: str = "chaos",
    stall_s: float = RECONCILE_LOCK_S + 15,
) -> ChaosReport:
    """Run one chaos experiment; see the module docstring."""
    report = ChaosReport(n=n, plan=plan, bound_s=plan.time_bound_s(n))
    report.keys = [f"{key_prefix}-{plan.seed}-{i:06d}" for i in range(n)]
    report.log_dir = workdir
    started = time.monotonic()
    with _stack(n, plan, workdir) as (server, stack):
        producer = Producer(stack.settings)
        sandbox = _Sandbox(stack.sandbox_url)
        controller = _Controller(
            n=n,
            plan=plan,
            stack=stack,
            server=server,
            sandbox=sandbox,
            started=started,
            events=report.events,
        )
        job_ids: dict[str, str] = {}
        try:
            controller.start()
            _submit_all(n, plan, producer, report, job_ids)
            final = _settle(
                producer,
                job_ids,
                report,
                deadline=started + report.bound_s,
                stall_s=stall_s,
                controller=controller,
            )
            report.elapsed_s = time.monotonic() - started
            controller.stop_event.set()
            controller.join(timeout=120)
            if controller.error is not None:
                raise controller.error
            _await_id_lookups(producer, timeout_s=20)
            _collect(report, producer, sandbox, job_ids, final)
        finally:
            controller.stop_event.set()
            sandbox.close()
            stack.stop_worker_supervisor()
            producer.redis.close()
        report.log_events = _log_events(stack.log_path("workers"))
    return report
