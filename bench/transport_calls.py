"""``python -m bench.transport_calls URL``: sends through the client alone, to profile it.

N threads (``--threads``) each send ``--requests`` SMS through one
``ConnectusClient`` to a running sandbox at ``URL`` (``connectus sandbox``),
then print the client's CPU per request (µs) and its rate. No worker, no
Redis: what py-spy samples is the HTTP call. Issue 19's profile::

    connectus sandbox --port 8099 &
    py-spy record --gil --rate 200 --format raw -o calls.txt -- \\
        python -m bench.transport_calls http://127.0.0.1:8099
"""

from __future__ import annotations

import argparse
import threading
import time

from bench.harness import SANDBOX_KEY, SANDBOX_USER
from connectus_worker.worker.connectus.client import ConnectusClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--requests", type=int, default=250, help="per thread")
    args = parser.parse_args(argv)
    client = ConnectusClient(
        api_user=SANDBOX_USER, api_key=SANDBOX_KEY, base_url=args.url, v1_base_url=args.url,
        qr_base_url=args.url, connect_timeout_s=5.0, read_timeout_s=30.0,
    )  # fmt: skip

    def run() -> None:
        for _ in range(args.requests):
            client.v3.send_sms(dst_number="56987688060", sms_content="hola")

    cpu, wall = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=run) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = args.threads * args.requests
    cpu_us = (time.process_time() - cpu) / total * 1e6
    print(
        f"{total} requests: {cpu_us:.0f} µs of CPU each, {total / (time.monotonic() - wall):.0f}/s"
    )
    client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
