"""``python -m sandbox --port 8081 [fault flags]``: run the sandbox in the foreground.

Credentials come from ``CONNECTUS_API_USER`` / ``CONNECTUS_API_KEY`` (defaults
``sandbox`` / ``sandbox-key``), read here once at start-up.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from sandbox.config import FAULTS_ALL, FAULTS_SEND_ONLY, FaultConfig, config_from_env
from sandbox.server import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency (ms)")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="± uniform jitter (ms)")
    p.add_argument("--error-rate", type=float, default=0.0, help="rate of 500/502/503/504")
    p.add_argument("--rate-429", type=float, default=0.0, help="rate of HTTP 429")
    p.add_argument("--retry-after-s", type=int, default=1, help="Retry-After of a 429 (s)")
    p.add_argument("--throttle-rate", type=float, default=0.0, help="rate of ESME_RTHROTTLED")
    p.add_argument("--drop-rate", type=float, default=0.0, help="rate of dropped-after-accept")
    p.add_argument("--ambiguous-charge-rate", type=float, default=0.5,
                   help="share of 500/504 faults that charged the message first")  # fmt: skip
    p.add_argument("--faults-on-lookups", action="store_true",
                   help="fault every documented call, not only sends")  # fmt: skip
    p.add_argument("--limit-per-s", type=float, default=0.0,
                   help="provider limit per account and product (sends/s; 0 = off)")  # fmt: skip
    p.add_argument("--limit-burst", type=int, default=0,
                   help="burst of that limit (sends; 0 = one second's worth)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the fault and status RNGs")
    p.add_argument("--step-delay-s", type=float, default=0.05, help="status step delay (s)")
    p.add_argument("--undeliverable-rate", type=float, default=0.0)
    p.add_argument("--status-hook-url", default=None, help="SMS status webhook URL")
    p.add_argument("--incoming-hook-url", default=None, help="incoming SMS webhook URL")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    faults = FaultConfig(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        rate_429=args.rate_429,
        retry_after_s=args.retry_after_s,
        throttle_rate=args.throttle_rate,
        drop_rate=args.drop_rate,
        ambiguous_charge_rate=args.ambiguous_charge_rate,
        applies_to=FAULTS_ALL if args.faults_on_lookups else FAULTS_SEND_ONLY,
        seed=args.seed,
        limit_per_s=args.limit_per_s,
        limit_burst=args.limit_burst,
    )
    config = config_from_env(
        os.environ,
        faults=faults,
        seed=args.seed,
        step_delay_s=args.step_delay_s,
        undeliverable_rate=args.undeliverable_rate,
        sms_status_hook_url=args.status_hook_url,
        sms_incoming_hook_url=args.incoming_hook_url,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("sandbox").info(
        "sandbox on http://%s:%d (user %s)", args.host, args.port, config.api_user
    )
    run(host=args.host, port=args.port, config=config)


if __name__ == "__main__":
    main()
