"""The machinery the scenarios share: one private Redis, one sandbox, worker runs.

Everything in one ``python -m bench`` invocation runs against the same
processes: a private ``redis-server`` (so ``INFO commandstats`` counts only
this run) and one ``connectus sandbox`` whose latency is switched between
scenarios with ``PUT /_sandbox/faults``. Between scenarios Redis is flushed
(``FLUSHALL`` + ``CONFIG RESETSTAT``) and the sandbox is reset
(``POST /_sandbox/reset``), so no run inherits another's data.

A worker run (:meth:`Bench.run_workers`) is, for the project and the baseline alike:

1. start the workers (supervisor + children, or the baseline's one process)
   and wait until they are consuming;
2. snapshot CPU (worker processes), Redis stats, Redis memory;
3. enqueue all N messages from this process, one call each, as fast as it
   goes (``Producer.send_sms`` / ``send_sms.send``), recording when each
   was enqueued;
4. wait until the sandbox ledger holds N charges; then snapshot again;
5. read per-message latencies (job records, or the ledger for the baseline)
   and stop the workers: with SIGKILL once every message is charged and
   the last acks had their 0.3 s (they are idle then, nothing is measured
   after, and the next run starts with FLUSHALL), since Dramatiq's graceful
   stop spends 1-3 s polling (``worker_timeout``: 1 s, twice) per run;
   SIGTERM and a wait otherwise (the OTP run stops with a backlog left).

Workers start before the enqueue so that the clock can start when the first
message is in the queue (throughput = N / (last charge - first enqueue
complete)) and so that the latency of each message is its real time from
enqueue to sent, queueing included. The producer shares the 2 cores with the
workers during the burst; its own rate is measured separately (scenario
``enqueue``, workers stopped).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

from bench import procstats
from bench.rows import Result, percentile
from bench.runinfo import ROOT
from devtools.embedded_redis import RedisServer
from devtools.stack import SANDBOX_KEY, SANDBOX_USER, LocalStack

BASELINE_NAMESPACE = "bench-baseline"
PROJECT_PREFIX = "cwbench"
SMS_TEXT = "Benchmark message {i}: your order has shipped."
# The shared rate limiter's buckets lifted far above any rate reached here: the
# benchmark measures the send path (the limiter's Redis calls included), not the
# configured Connectus rate (RATE_SMS_PER_S defaults to 50/s). The baseline has
# no limiter at all.
UNLIMITED = {
    f"RATE_{product}_{field}": "1000000"
    for product in ("SMS", "OTP", "EMAIL", "WHATSAPP")
    for field in ("PER_S", "BURST")
}


def number(i: int) -> str:
    """A distinct Chilean mobile number per message (the ledger maps it back to ``i``)."""
    return f"5698{i % 10_000_000:07d}"


class Bench:
    """The shared processes of one invocation; use as a context manager."""

    def __init__(self, *, log: Callable[[str], None] = print, redis_url: str | None = None) -> None:
        self.log = log
        self.requested_redis_url = redis_url
        self.redis_server: RedisServer | None = None
        self.stack: LocalStack | None = None
        self.redis: redis.Redis | None = None
        self.redis_url = ""
        self.http = httpx.Client(timeout=30.0)
        self.log_dir = Path(tempfile.mkdtemp(prefix="cw-bench-"))
        self._baseline_actor: Any = None
        # Roots of worker trees that are drained: stopped with SIGKILL (module docstring).
        self._drained: set[int] = set()

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Bench:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self.requested_redis_url:
            url = self.requested_redis_url
        else:
            exe = shutil.which("redis-server")
            self.redis_server = RedisServer(executable=exe) if exe else RedisServer()
            url = self.redis_server.start()
        self.redis = redis.Redis.from_url(url)
        self.redis_url = url
        self.stack = LocalStack(
            redis_url=url,
            processes=1,
            threads=8,
            start_workers=False,
            log_dir=self.log_dir,
            env={"KEY_PREFIX": PROJECT_PREFIX, **UNLIMITED},
        )
        self.stack.start()
        self.log(
            f"redis {url} ({self.redis.info('server')['redis_version']}), "
            f"sandbox {self.stack.sandbox_url}, logs {self.log_dir}"
        )

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None
        if self.redis_server is not None:
            self.redis_server.close()
            self.redis_server = None
        self.http.close()

    @property
    def sandbox_url(self) -> str:
        assert self.stack is not None
        return self.stack.sandbox_url

    @property
    def sandbox_pid(self) -> int:
        assert self.stack is not None and self.stack.sandbox is not None
        return self.stack.sandbox.pid

    # -- shared state between scenarios ---------------------------------------------

    def reset(self, *, latency_ms: float) -> None:
        """Empty Redis and the sandbox; set the sandbox latency (ms)."""
        assert self.redis is not None
        self.redis.flushall()
        self.redis.config_resetstat()
        self.http.post(f"{self.sandbox_url}/_sandbox/reset", json={}).raise_for_status()
        self.http.put(
            f"{self.sandbox_url}/_sandbox/faults", json={"latency_ms": latency_ms}
        ).raise_for_status()

    def charges(self) -> int:
        answer = self.http.get(f"{self.sandbox_url}/_sandbox/stats")
        answer.raise_for_status()
        return int(answer.json()["charges"])

    def ledger(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self.http.get(
                f"{self.sandbox_url}/_sandbox/ledger", params={"since": since, "limit": 10_000}
            ).json()
            rows += page["charges"]
            if page["next"] >= page["total"] or not page["charges"]:
                return rows
            since = page["next"]

    def redis_snapshot(self) -> dict[str, Any]:
        """Commands by name, total commands, memory, Redis CPU."""
        assert self.redis is not None
        stats = self.redis.info("commandstats")
        cmds = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        mem = self.redis.info("memory")
        cpu = self.redis.info("cpu")
        return {
            "cmds": cmds,
            "used_memory": int(mem["used_memory"]),
            "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        }

    # -- worker processes ----------------------------------------------------------------

    @contextlib.contextmanager
    def project_workers(self, *, processes: int, threads: int) -> Iterator[int]:
        """The project's supervisor (``connectus worker``); yields its pid once every
        child logged ``worker.started``."""
        stack = self.stack
        assert stack is not None
        log_path = stack.log_path("workers")
        offset = log_path.stat().st_size if log_path.exists() else 0
        stack.processes, stack.threads = processes, threads
        stack.start_worker_supervisor()
        assert stack.workers is not None
        pid = stack.workers.pid
        try:
            wait_for_lines(log_path, offset, "worker.started", processes, stack.workers)
            yield pid
        finally:
            if pid in self._drained:
                self._drained.discard(pid)  # pids are reused
                # The supervisor first: it would respawn a child it sees die.
                kill_now([pid, *procstats.children(pid)])
            stack.stop_worker_supervisor()

    @contextlib.contextmanager
    def baseline_worker(self, *, threads: int = 8) -> Iterator[int]:
        """The baseline's single worker process; yields its pid once it consumes."""
        assert self.stack is not None
        env = {**self.baseline_env(), "BENCH_BASELINE_THREADS": str(threads)}
        proc = start_module("bench.baseline", env=env, log_path=self.log_dir / "baseline.log",
                            ready="baseline worker ready")  # fmt: skip
        try:
            yield proc.pid
        finally:
            if proc.pid in self._drained:
                self._drained.discard(proc.pid)
                kill_now([proc.pid])
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def baseline_env(self) -> dict[str, str]:
        assert self.stack is not None
        return {
            **os.environ,
            "BENCH_REDIS_URL": self.stack.env["REDIS_URL"],
            "BENCH_NAMESPACE": BASELINE_NAMESPACE,
            "CONNECTUS_BASE_URL": self.sandbox_url,
            "CONNECTUS_API_USER": SANDBOX_USER,
            "CONNECTUS_API_KEY": SANDBOX_KEY,
        }

    # -- producers -----------------------------------------------------------------------

    def project_enqueue(self) -> Callable[[int], str]:
        from connectus_worker.producers.api import Producer

        assert self.stack is not None
        producer = Producer(self.stack.settings)
        return lambda i: producer.send_sms(number(i), SMS_TEXT.format(i=i))

    def baseline_enqueue(self) -> Callable[[int], str]:
        if self._baseline_actor is None:
            # The baseline module reads its broker URL from the environment at import.
            os.environ.update(
                {
                    k: v
                    for k, v in self.baseline_env().items()
                    if k.startswith(("BENCH_", "CONNECTUS_"))
                }
            )
            from bench import baseline

            self._baseline_actor = baseline.send_sms
        actor = self._baseline_actor
        return lambda i: actor.send(number(i), SMS_TEXT.format(i=i)).message_id

    # -- one measured run ------------------------------------------------------------------

    def run_enqueue(self, *, system: str, messages: int) -> Result:
        """Enqueue rate with no worker running; Redis footprint of a queued message."""
        self.reset(latency_ms=0)
        enqueue = self.project_enqueue() if system == "project" else self.baseline_enqueue()
        enqueue(0)  # warm: script load, connection
        self.reset(latency_ms=0)
        before = self.redis_snapshot()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for i in range(messages):
            enqueue(i)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        after = self.redis_snapshot()
        cmds = cmd_delta(before, after)
        return Result(
            name="enqueue",
            system=system,
            latency_ms=None,
            processes=1,
            messages=messages,
            msgs_per_s=messages / elapsed,
            cpu_s_per_1k=cpu / messages * 1000,
            redis_cmds_per_msg=sum(cmds.values()) / messages,
            redis_bytes_per_recipient=(after["used_memory"] - before["used_memory"]) / messages,
            details={"commands": per_msg(cmds, messages), "producer": "this process, 1 thread"},
        )

    def run_workers(
        self,
        *,
        name: str,
        system: str,
        latency_ms: float,
        messages: int,
        processes: int = 1,
        threads: int = 8,
        timeout_s: float = 600.0,
        rss_interval_s: float = 0.5,
        on_running: Callable[[list[int]], None] | None = None,
        prefill: bool = False,
    ) -> Result:
        """Start workers, enqueue ``messages`` SMS, wait for every charge, measure.

        ``prefill=True`` enqueues everything before the workers start and starts
        the clock when they are ready: the drain rate with no producer competing
        for the CPU. Latency percentiles are then not measured (null): each
        message's wait would include the prefill itself.
        """
        self.reset(latency_ms=latency_ms)
        if system == "project":
            workers = self.project_workers(processes=processes, threads=threads)
            enqueue = self.project_enqueue()
        else:
            workers = self.baseline_worker(threads=threads)
            enqueue = self.baseline_enqueue()
        enqueued_at = [0.0] * messages
        ids: list[str] = [""] * messages
        first_done = 0.0

        def enqueue_all() -> None:
            nonlocal first_done
            for i in range(messages):
                enqueued_at[i] = time.time()
                ids[i] = enqueue(i)
                if i == 0:
                    first_done = time.time()

        before = self.redis_snapshot()
        if prefill:
            enqueue_all()
        t_enqueued = time.time()
        with workers as root:

            def worker_pids() -> list[int]:
                return procstats.children(root) if system == "project" else [root]

            sampler = procstats.RssSampler(worker_pids, interval_s=rss_interval_s).start()
            split0 = procstats.tree_cpu_split(root)
            switches0 = procstats.tree_switches(root)
            sandbox_cpu0 = procstats.cpu_seconds(self.sandbox_pid)
            if prefill:
                t_start = time.time()
            else:
                enqueue_all()
                t_start = first_done
                t_enqueued = time.time()
            if on_running is not None:
                on_running(worker_pids())
            deadline = time.monotonic() + timeout_s
            while (done := self.charges()) < messages:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{name}/{system}: {done}/{messages} charged in {timeout_s} s"
                    )
                time.sleep(0.1)
            time.sleep(0.3)  # let the last ledger writes and acks land
            split = procstats.tree_cpu_split(root)
            switches = procstats.tree_switches(root) - switches0
            user, kernel = split[0] - split0[0], split[1] - split0[1]
            cpu = user + kernel
            sandbox_cpu = procstats.cpu_seconds(self.sandbox_pid) - sandbox_cpu0
            after = self.redis_snapshot()
            sampler.stop()
            self._drained.add(root)  # every message charged: idle from here on
            ledger = self.ledger()
            latencies = [] if prefill else self._latencies(system, ids, enqueued_at, ledger)

        cmds = cmd_delta(before, after)
        t_last = max(float(c["at"]) for c in ledger)
        elapsed = t_last - t_start
        return Result(
            name=name,
            system=system,
            latency_ms=latency_ms,
            processes=processes,
            messages=messages,
            msgs_per_s=messages / elapsed,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            cpu_s_per_1k=cpu / messages * 1000,
            peak_rss_mb=sampler.peak_mb(),
            redis_cmds_per_msg=sum(cmds.values()) / messages,
            redis_bytes_per_recipient=(after["used_memory"] - before["used_memory"]) / messages,
            details={
                "threads": threads,
                "prefill": prefill,
                "enqueue_per_s": round(messages / max(t_enqueued - enqueued_at[0], 1e-9), 1),
                "drain_s": round(elapsed, 3),
                "charges": len(ledger),
                # Of the workers' CPU, the kernel's share, and their threads'
                # context switches per message (threads alive at the end).
                "worker_kernel_share": round(kernel / cpu, 3) if cpu else None,
                "worker_switches_per_msg": round(switches / messages, 1),
                "sandbox_cpu_s_per_1k": round(sandbox_cpu / messages * 1000, 3),
                "redis_cpu_s_per_1k": round(
                    (after["cpu_s"] - before["cpu_s"]) / messages * 1000, 3
                ),
                "commands": per_msg(cmds, messages),
                "rss_growth": sampler.growth(),
                "rss_mb_by_pid": {str(p): round(kb / 1024, 1) for p, kb in sampler.hwm_kb.items()},
                "rss_series_mb": [
                    round(sum(s.values()) / len(s) / 1024, 1) for _, s in sampler.samples if s
                ][:: max(1, len(sampler.samples) // 60)],
            },
        )

    def _latencies(
        self,
        system: str,
        ids: list[str],
        enqueued_at: list[float],
        ledger: list[dict[str, Any]],
    ) -> list[float]:
        """ms from enqueue to sent, per message."""
        if system == "project":
            assert self.redis is not None
            out: list[float] = []
            for lo in range(0, len(ids), 2000):
                pipe = self.redis.pipeline(transaction=False)
                for job_id in ids[lo : lo + 2000]:
                    pipe.hmget(f"{PROJECT_PREFIX}:job:{job_id}", "created_at", "sent_at")
                for created, sent in pipe.execute():
                    if created is not None and sent is not None:
                        out.append(float(int(sent) - int(created)))
            return out
        index = {number(i): at for i, at in enumerate(enqueued_at)}
        return [(float(c["at"]) - index[c["dst"]]) * 1000 for c in ledger if c["dst"] in index]


def start_module(
    module: str, *, env: dict[str, str], log_path: Path, ready: str
) -> subprocess.Popen[bytes]:
    """``python -m module`` in a session of its own, its output appended to ``log_path``;
    returns once it printed ``ready`` (killed if it never does)."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_lines(log_path, offset, ready, 1, proc)
    except BaseException:
        kill_now([proc.pid])
        raise
    return proc


def wait_for_lines(
    path: Path,
    offset: int,
    text: str,
    count: int,
    proc: subprocess.Popen[bytes],
    timeout_s: float = 60,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited ({proc.returncode}); see {path}")
        with contextlib.suppress(OSError), path.open("rb") as f:
            f.seek(offset)
            if f.read().decode(errors="replace").count(text) >= count:
                return
        time.sleep(0.05)
    raise TimeoutError(f"no {count}x {text!r} in {path} within {timeout_s} s")


def kill_now(pids: list[int], timeout_s: float = 10) -> None:
    """SIGKILL ``pids`` (in this order) and wait until none runs (reaped or a zombie)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def _running(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] != "Z"


# The harness's own commands, not the system's.
_HARNESS_COMMANDS = {"info", "config|resetstat", "config", "flushall"}


def cmd_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    out = {}
    for name, calls in after["cmds"].items():
        if name in _HARNESS_COMMANDS:
            continue
        delta = calls - before["cmds"].get(name, 0)
        if delta:
            out[name] = delta
    return out


def per_msg(cmds: dict[str, int], messages: int) -> dict[str, float]:
    return {k: round(v / messages, 3) for k, v in sorted(cmds.items(), key=lambda kv: -kv[1])}
