"""A Redis Sentinel deployment as real processes, for the failover tests.

:class:`SentinelCluster` starts, on free 127.0.0.1 ports under one directory,
two ``redis-server`` data nodes (a primary and its replica, each with an AOF)
and three sentinels (``redis-server sentinel.conf --sentinel``) that monitor
the primary with quorum 2. Short timeouts (down after 1 s, failover timeout
3 s) make a failover take a few seconds. :attr:`SentinelCluster.env` is what
a worker, producer or service needs to find the primary through Sentinel.

    with SentinelCluster(tmp_path) as cluster:
        old = cluster.kill_primary()          # SIGKILL
        new = cluster.wait_for_promotion(old)  # SENTINEL get-master-addr-by-name
        cluster.rejoin(old)                    # back as a replica of the new primary
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from devtools.embedded_redis import RedisServer, find_redis_server, free_port
from tests.support.waiting import wait_for

MASTER = "mymaster"
DOWN_AFTER_MS = 2000  # a loaded 2-core box can be slow to answer a PING: no spurious failover
FAILOVER_TIMEOUT_MS = 3000


def _wait(probe: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    """:func:`tests.support.waiting.wait_for`, where a Redis that does not answer yet
    counts as not yet."""

    def answered() -> Any:
        try:
            return probe()
        except (redis.RedisError, OSError):
            return None

    return wait_for(answered, timeout_s=timeout_s, what=what)


class SentinelCluster:
    """Two data nodes and three sentinels; see the module docstring."""

    def __init__(self, directory: Path, *, master: str = MASTER) -> None:
        self.dir = directory
        self.master = master
        self.executable = find_redis_server()
        self.nodes: dict[int, RedisServer] = {}
        self.sentinel_ports: list[int] = []
        self._sentinels: list[subprocess.Popen[bytes]] = []

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        primary = self._node("node-a", [])
        replica = self._node("node-b", ["--replicaof", "127.0.0.1", str(primary.port)])
        self._wait_in_sync(replica)
        for i in range(3):
            self._start_sentinel(i, primary.port)
        # A failover needs a quorum that knows the replica and each other
        # (sentinels find each other through the primary's hello channel, every 2 s).
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1)
            _wait(lambda c=client: len(c.sentinel_sentinels(self.master)) == 2
                  and len(c.sentinel_slaves(self.master)) == 1,
                  timeout_s=30, what=f"sentinel {port} to know its peers and the replica")  # fmt: skip
            client.close()

    def stop(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._sentinels.clear()
        for node in self.nodes.values():
            node.close()

    def __enter__(self) -> SentinelCluster:
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

    # -- what clients need ---------------------------------------------------------

    @property
    def sentinels(self) -> str:
        """``REDIS_SENTINELS``: host:port of every sentinel, comma-separated."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    @property
    def env(self) -> dict[str, str]:
        """The settings of a process that finds the primary through Sentinel
        (``REDIS_URL`` names today's primary, but only its db number is used)."""
        return {
            "REDIS_URL": f"redis://127.0.0.1:{self.primary_port()}/0",
            "REDIS_SENTINELS": self.sentinels,
            "REDIS_SENTINEL_MASTER": self.master,
            "REDIS_MIN_REPLICAS": "1",
            "REDIS_WAIT_TIMEOUT_MS": "500",
        }

    def primary_port(self) -> int:
        """The primary's port, as the first sentinel that answers names it."""
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1)
            try:
                _, primary = client.sentinel_get_master_addr_by_name(self.master)
                return int(primary)
            except (redis.RedisError, OSError, TypeError):
                continue
            finally:
                client.close()
        raise RuntimeError("no sentinel answered")

    def client(self, port: int) -> redis.Redis:
        """A plain client of one data node (to read INFO, or to check data)."""
        return redis.Redis(port=port, socket_timeout=2)

    # -- failover ------------------------------------------------------------------

    def cut_replication(self) -> None:
        """The replica loses its link to the primary and cannot get it back (it
        authenticates as a user the primary does not have): writes from now on stay on
        the primary alone. A replica lagging at the failover, made deterministic."""
        primary = self.client(self.primary_port())
        for port in self.nodes:
            if port != self.primary_port():
                replica = self.client(port)
                replica.config_set("masteruser", "no-such-user")
                replica.config_set("masterauth", "no-such-password")
                replica.close()
        primary.client_kill_filter(_type="replica")
        _wait(lambda: primary.info("replication")["connected_slaves"] == 0,
              timeout_s=10, what="the replica cut off")  # fmt: skip
        primary.close()

    def kill_primary(self) -> int:
        """SIGKILL the primary; returns its port."""
        port = self.primary_port()
        self.nodes[port].kill()
        return port

    def wait_for_promotion(self, old_port: int, *, timeout_s: float = 30) -> int:
        """Wait until the sentinels name another primary and it acts as one; its port."""

        def promoted() -> int | None:
            port = self.primary_port()
            if port == old_port:
                return None
            role = self.client(port).info("replication")["role"]
            return port if role == "master" else None

        return int(_wait(promoted, timeout_s=timeout_s, what="the replica's promotion"))

    def rejoin(self, port: int, *, timeout_s: float = 30) -> None:
        """Restart a killed node as a replica of the current primary, in sync."""
        node = self.nodes[port]
        node.args = ["--replicaof", "127.0.0.1", str(self.primary_port())]
        # The promoted node may still carry cut_replication's credentials; harmless on
        # a primary, and the restarted node starts with none.
        node.restart()
        self._wait_in_sync(node, timeout_s=timeout_s)

    # -- processes -----------------------------------------------------------------

    def _node(self, name: str, args: list[str]) -> RedisServer:
        directory = self.dir / name
        directory.mkdir(parents=True, exist_ok=True)
        node = RedisServer(appendonly=True, dir=directory, executable=self.executable, args=args)
        node.start()
        self.nodes[node.port] = node
        return node

    def _wait_in_sync(self, node: RedisServer, *, timeout_s: float = 30) -> None:
        client = self.client(node.port)
        try:
            _wait(lambda: client.info("replication").get("master_link_status") == "up",
                  timeout_s=timeout_s, what=f"replica {node.port} in sync")  # fmt: skip
        finally:
            client.close()

    def _start_sentinel(self, i: int, primary_port: int) -> None:
        directory = self.dir / f"sentinel-{i}"
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = directory / "sentinel.conf"  # the sentinel rewrites it: one file each
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {self.master} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {self.master} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {self.master} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {self.master} 1\n"
        )
        with (directory / "sentinel.log").open("ab") as log:
            process = subprocess.Popen(
                [str(self.executable), str(conf), "--sentinel"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self._sentinels.append(process)
        self.sentinel_ports.append(port)
        client = redis.Redis(port=port, socket_timeout=1)
        try:
            _wait(client.ping, timeout_s=10, what=f"sentinel {port} to answer")
        finally:
            client.close()
