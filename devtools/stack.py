"""A whole local system as real processes: Redis, the sandbox, the workers.

Used by ``connectus demo``, the integration and acceptance tests, the chaos
test and the benchmarks, so they all exercise the same thing a user runs:
``connectus sandbox``, ``connectus worker`` (and, when asked, ``connectus serve``) as
subprocesses talking over
loopback HTTP and a real Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from connectus_worker.config import Settings, load_settings
from devtools.embedded_redis import DEFAULT_LOCAL_URL, RedisServer, free_port, resolve_redis_url

SANDBOX_USER = "sandbox"
SANDBOX_KEY = "sandbox-key"


def wait_until_http_ok(
    url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 2xx; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


class LocalStack:
    """Start with ``with LocalStack(...) as stack:``; ``stack.settings`` points at it."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        sandbox_flags: Mapping[str, object] | None = None,
        processes: int = 2,
        threads: int = 8,
        env: Mapping[str, str] | None = None,
        start_workers: bool = True,
        log_dir: Path | None = None,
    ) -> None:
        self.requested_redis_url = redis_url
        self.sandbox_flags = dict(sandbox_flags or {})
        self.processes = processes
        self.threads = threads
        self.extra_env = dict(env or {})
        self.start_workers = start_workers
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cw-stack-"))
        self.redis_server: RedisServer | None = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.workers: subprocess.Popen[bytes] | None = None
        self.service: subprocess.Popen[bytes] | None = None
        self.service_url = ""
        self.sandbox_url = ""
        self.env: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        candidates: list[str | None] = (
            [self.requested_redis_url]
            if self.requested_redis_url
            else [os.environ.get("REDIS_URL"), DEFAULT_LOCAL_URL]
        )
        redis_url, self.redis_server = resolve_redis_url(candidates)
        port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "KEY_PREFIX": f"cw{uuid.uuid4().hex[:8]}",
            # A local stack against the sandbox: its published key is allowed.
            "RUN_MODE": "sandbox",
            "CONNECTUS_API_USER": SANDBOX_USER,
            "CONNECTUS_API_KEY": SANDBOX_KEY,
            "CONNECTUS_BASE_URL": self.sandbox_url,
            "CONNECTUS_V1_BASE_URL": self.sandbox_url,
            "CONNECTUS_WHATSAPP_QR_URL": self.sandbox_url,
            "LOG_JSON": "true",
            # The supervisor's /metrics, /healthz, /readyz: a port of its own,
            # so that several stacks (and a developer's worker) never clash.
            "WORKER_METRICS_PORT": str(free_port()),
            # Its children's metric files live with the logs, so a SIGKILLed
            # supervisor leaves nothing behind in /tmp.
            "PROMETHEUS_MULTIPROC_DIR": str(self.log_dir / "worker-metrics"),
            **self.extra_env,
        }
        flags = [
            f"--{name.replace('_', '-')}={value}" for name, value in self.sandbox_flags.items()
        ]
        self.sandbox = self._spawn("sandbox", ["sandbox", "--port", str(port), *flags])
        wait_until_http_ok(
            f"{self.sandbox_url}/_sandbox/health", timeout_s=30, process=self.sandbox
        )
        if self.start_workers:
            self.start_worker_supervisor()

    def start_worker_supervisor(self) -> None:
        self.workers = self._spawn(
            "workers",
            ["worker", "--processes", str(self.processes), "--threads", str(self.threads)],
        )

    def start_service(self) -> str:
        """``connectus serve`` on a free loopback port (its settings from ``env``: intake
        tokens, webhook secret, console users); returns its base URL once /healthz answers."""
        port = free_port()
        self.service = self._spawn("service", ["serve", "--port", str(port)])
        self.service_url = f"http://127.0.0.1:{port}"
        wait_until_http_ok(f"{self.service_url}/healthz", timeout_s=30, process=self.service)
        return self.service_url

    def stop_worker_supervisor(self, *, timeout_s: float = 60) -> int | None:
        """SIGTERM the supervisor (it drains its children); returns its exit code."""
        if self.workers is None:
            return None
        proc, self.workers = self.workers, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop(self, *, drain: bool = True) -> None:
        """Stop everything; ``drain=False`` SIGKILLs the workers (their supervisor's
        process group) instead of letting them drain: a test's teardown, where the
        drain proves nothing and costs a second or more."""
        if not drain and self.workers is not None and self.workers.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.workers.pid, signal.SIGKILL)
            self.workers.wait()
        self.stop_worker_supervisor()
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(timeout=25)  # uvicorn's graceful shutdown is 20 s at most
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
        self.service = None
        if self.sandbox is not None and self.sandbox.poll() is None:
            self.sandbox.terminate()
            try:
                self.sandbox.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sandbox.kill()
                self.sandbox.wait()
        self.sandbox = None
        if self.redis_server is not None:
            self.redis_server.close()
            self.redis_server = None

    # -- helpers ---------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)

    @property
    def metrics_url(self) -> str:
        """Base URL of the worker supervisor's /metrics, /healthz and /readyz."""
        return f"http://127.0.0.1:{self.env['WORKER_METRICS_PORT']}"

    def sandbox_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.sandbox_url, timeout=30.0)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = self.log_path(name).open("ab")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "connectus_worker.cli", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not them
            )
        finally:
            log.close()
