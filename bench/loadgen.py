"""Sandbox capacity: how many ``send_individual`` requests/s the sandbox serves.

With ``wrk`` on PATH (Debian: ``apt-get install -y wrk``) it drives the load:
C keep-alive connections, each posting the next request as soon as the last
answered. Without wrk, a Python asyncio + httpx generator does the same; it is
itself CPU-bound on a small machine, so its figure is a lower bound.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.stack import SANDBOX_KEY, SANDBOX_USER

PATH = "/api_v3/sms/send_individual"
BODY = {"dst_number": "56981234567", "sms_content": "Benchmark load"}


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    tool: str

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


def _auth() -> str:
    return "Basic " + base64.b64encode(f"{SANDBOX_USER}:{SANDBOX_KEY}".encode()).decode()


def run(base_url: str, *, seconds: float, connections: int) -> Load:
    if shutil.which("wrk"):
        return _wrk(base_url, seconds=seconds, connections=connections)
    return asyncio.run(_python(base_url, seconds=seconds, connections=connections))


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m[1]) * _UNITS[m[2]]


def _wrk(base_url: str, *, seconds: float, connections: int) -> Load:
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "{_auth()}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{int(seconds)}s",
                "--latency",
                "-s",
                f.name,
                base_url + PATH,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(f.name).unlink(missing_ok=True)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return Load(
        requests=int(total[1]),
        seconds=_ms(total[2] + total[3]) / 1000,
        p50_ms=_ms(pct["50"]) if "50" in pct else None,
        p99_ms=_ms(pct["99"]) if "99" in pct else None,
        errors=int(errors[1]) if errors else 0,
        tool=f"wrk -t2 -c{connections}" + (f" ({socket_errors[1]})" if socket_errors else ""),
    )


async def _python(base_url: str, *, seconds: float, connections: int) -> Load:
    import httpx

    latencies: list[float] = []
    errors = 0
    # One single-connection client per connection: a shared AsyncClient's pool
    # costs 5x the CPU per request at 64 connections (`python -m bench.http_clients`),
    # which made this fallback measure itself rather than the sandbox.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(
            base_url=base_url, limits=limits, timeout=30.0, headers={"Authorization": _auth()}
        )
        for _ in range(connections)
    ]
    stop_at = time.perf_counter() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            response = await client.post(PATH, json=BODY)
            latencies.append((time.perf_counter() - t0) * 1000)
            errors += response.status_code != 200

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(one(client) for client in clients))
    finally:
        elapsed = time.perf_counter() - t0
        for client in clients:
            await client.aclose()
    latencies.sort()
    n = len(latencies)
    return Load(
        requests=n,
        seconds=elapsed,
        p50_ms=latencies[n // 2] if n else None,
        p99_ms=latencies[min(n - 1, n * 99 // 100)] if n else None,
        errors=errors,
        tool=f"python httpx asyncio, {connections} single-connection clients",
    )
