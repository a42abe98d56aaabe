"""``python -m bench.http_clients``: threads or asyncio for the send path? Measured.

The issue leaves concurrency open ("threads, an asyncio event loop in the
actor, batching"). This measures the one part every model keeps, the HTTP
call to Connectus, in each model, in one invocation against one sandbox
(its latency set with ``--latency-ms``): client CPU per request (µs, the
process's utime+stime / requests) and requests per second, for

- ``threads_shared``: N threads sharing one pooled ``httpx.Client`` (the baseline's way);
- ``threads_own``: N threads, each with its own one-connection ``httpx.Client``;
- ``async_shared``: N tasks on one event loop sharing one ``httpx.AsyncClient``;
- ``async_own``: N tasks, each with its own one-connection ``httpx.AsyncClient``;
- ``project``: N threads through the project's own ``ConnectusClient.call`` (an
  ``httpx.Client`` per thread, streamed answers checked against the size cap and
  the deadline, answer checks): what a send's HTTP part costs in the worker;
- ``threads_raw`` / ``async_raw``: the same request bytes and the same minimal
  reading of the answer (status line, headers, ``Content-Length`` body, JSON),
  over N blocking sockets in N threads, or over N asyncio streams on one event
  loop. No HTTP library at all: what is left between the two is the cost of the
  concurrency model itself (thread switches and the GIL against the loop).

Context switches per request (``ru_nvcsw`` + ``ru_nivcsw`` of the process) are
reported beside the CPU: on a virtual machine a switch is dear.

Each model runs in a fresh subprocess (so CPU and the GIL are its own), in
rounds that interleave the models, so the noise of a shared box hits all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.harness import SANDBOX_KEY, SANDBOX_USER, Bench

AUTH = (SANDBOX_USER, SANDBOX_KEY)
MODELS = (
    "threads_shared",
    "threads_own",
    "async_shared",
    "async_own",
    "project",
    "threads_raw",
    "async_raw",
)
PATH = "/api_v3/sms/send_individual"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _switches() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw + usage.ru_nivcsw


def _raw_request(base: str, i: int) -> bytes:
    url = httpx.URL(base)
    token = base64.b64encode(f"{SANDBOX_USER}:{SANDBOX_KEY}".encode()).decode()
    body = json.dumps(_body(i)).encode()
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _raw_answer(status: bytes, length: int, content: bytes) -> None:
    if status.split(None, 2)[1] != b"200" or len(content) != length:
        raise SystemExit(f"unexpected answer {status!r}")
    json.loads(content)


def _threads_raw(base: str, requests: int, concurrency: int) -> tuple[float, float]:
    url = httpx.URL(base)
    numbers, lock = iter(range(requests)), threading.Lock()

    def run() -> None:
        with socket.create_connection((url.host, url.port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with sock.makefile("rb") as fp:
                while True:
                    with lock:
                        i = next(numbers, None)
                    if i is None:
                        return
                    sock.sendall(_raw_request(base, i))
                    status, length = fp.readline(), 0
                    while (line := fp.readline()) not in (b"\r\n", b""):
                        name, _, value = line.partition(b":")
                        if name.lower() == b"content-length":
                            length = int(value)
                    _raw_answer(status, length, fp.read(length))

    return _run_threads(run, concurrency)


async def _async_raw(base: str, requests: int, concurrency: int) -> tuple[float, float]:
    url = httpx.URL(base)
    numbers = iter(range(requests))

    async def run() -> None:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        for i in numbers:
            writer.write(_raw_request(base, i))
            status, length = await reader.readline(), 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            _raw_answer(status, length, await reader.readexactly(length))
        writer.close()
        await writer.wait_closed()

    cpu, started = _cpu_s(), time.perf_counter()
    await asyncio.gather(*(run() for _ in range(concurrency)))
    return time.perf_counter() - started, _cpu_s() - cpu


def _body(i: int) -> dict[str, str]:
    return {"dst_number": f"5698{i:07d}", "sms_content": "hola"}


def _limits(n: int) -> httpx.Limits:
    return httpx.Limits(max_connections=n, max_keepalive_connections=n)


def _threads(base: str, requests: int, concurrency: int, own: bool) -> tuple[float, float]:
    shared = None if own else httpx.Client(base_url=base, auth=AUTH, limits=_limits(concurrency))
    numbers, lock = iter(range(requests)), threading.Lock()

    def run() -> None:
        client = shared or httpx.Client(base_url=base, auth=AUTH, limits=_limits(1))
        while True:
            with lock:
                i = next(numbers, None)
            if i is None:
                return
            client.post(PATH, json=_body(i)).raise_for_status()

    return _run_threads(run, concurrency)


def _run_threads(run: Callable[[], None], concurrency: int) -> tuple[float, float]:
    """``run`` in ``concurrency`` threads: (wall s, CPU s); any thread's error fails the model."""
    failures: list[BaseException] = []

    def guarded() -> None:
        try:
            run()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(concurrency)]
    cpu, started = _cpu_s(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started, _cpu_s() - cpu
    if failures:
        raise SystemExit(f"{len(failures)} thread(s) failed; first: {failures[0]!r}")
    return took


def _project(base: str, requests: int, concurrency: int) -> tuple[float, float]:
    """The project's own ``ConnectusClient.call`` from N threads."""
    from connectus_worker.worker.connectus.client import ConnectusClient

    transport = ConnectusClient(
        api_user=SANDBOX_USER,
        api_key=SANDBOX_KEY,
        base_url=base,
        v1_base_url=base,
        qr_base_url=base,
        connect_timeout_s=5.0,
        read_timeout_s=30.0,
        write_timeout_s=5.0,
        keepalive_expiry_s=60.0,
        user_agent="bench",
        deadline_s=60.0,
        max_response_bytes=1024 * 1024,
        max_listing_bytes=1024 * 1024,
    )
    url = base + PATH
    numbers, lock = iter(range(requests)), threading.Lock()

    def run() -> None:
        while True:
            with lock:
                i = next(numbers, None)
            if i is None:
                return
            transport.call("POST", url, lambda body: body, json_body=_body(i), send=True)

    try:
        return _run_threads(run, concurrency)
    finally:
        transport.close()


async def _tasks(base: str, requests: int, concurrency: int, own: bool) -> tuple[float, float]:
    size = 1 if own else concurrency
    clients = [
        httpx.AsyncClient(base_url=base, auth=AUTH, limits=_limits(size))
        for _ in range(concurrency if own else 1)
    ]
    numbers = iter(range(requests))

    async def run(client: httpx.AsyncClient) -> None:
        for i in numbers:
            (await client.post(PATH, json=_body(i))).raise_for_status()

    cpu, started = _cpu_s(), time.perf_counter()
    await asyncio.gather(*(run(clients[k % len(clients)]) for k in range(concurrency)))
    took = time.perf_counter() - started, _cpu_s() - cpu
    for client in clients:
        await client.aclose()
    return took


def _one(model: str, base: str, requests: int, concurrency: int) -> dict[str, Any]:
    own = model.endswith("_own")
    switches = _switches()
    if model == "threads_raw":
        wall, cpu = _threads_raw(base, requests, concurrency)
    elif model == "async_raw":
        wall, cpu = asyncio.run(_async_raw(base, requests, concurrency))
    elif model.startswith("project"):
        wall, cpu = _project(base, requests, concurrency)
    elif model.startswith("threads"):
        wall, cpu = _threads(base, requests, concurrency, own)
    else:
        wall, cpu = asyncio.run(_tasks(base, requests, concurrency, own))
    return {
        "model": model,
        "concurrency": concurrency,
        "requests": requests,
        "req_per_s": round(requests / wall, 1),
        "cpu_us_per_req": round(cpu / requests * 1e6),
        "switches_per_req": round((_switches() - switches) / requests, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_clients",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", default="16,64", help="comma-separated")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the sandbox's latency")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--child", nargs=3, metavar=("MODEL", "BASE", "CONCURRENCY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        model, base, concurrency = args.child
        print(json.dumps(_one(model, base, args.requests, int(concurrency))))
        return 0

    rows: list[dict[str, Any]] = []
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)  # noqa: E731
    with Bench(log=log) as bench:
        bench.reset(latency_ms=args.latency_ms)
        for round_no in range(args.rounds):
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                for model in args.models.split(","):
                    out = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "bench.http_clients",
                            "--requests",
                            str(args.requests),
                            "--child",
                            model,
                            bench.sandbox_url,
                            str(concurrency),
                        ],
                        capture_output=True,
                        text=True,
                    )
                    if out.returncode:
                        raise SystemExit(f"{model} failed:\n{out.stderr[-2000:]}")
                    row = {**json.loads(out.stdout), "round": round_no + 1}
                    rows.append(row)
                    print(
                        f"{row['model']:>15} c={concurrency:<3} {row['req_per_s']:>7} req/s "
                        f"{row['cpu_us_per_req']:>6} µs CPU/req "
                        f"{row['switches_per_req']:>6} switches/req (round {row['round']})"
                    )
    print(json.dumps({"latency_ms": args.latency_ms, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
