"""``python -m sandbox --port 8081 [fault flags]``: run the sandbox in the foreground.

Credentials come from ``CONNECTUS_API_USER`` / ``CONNECTUS_API_KEY`` (defaults
``sandbox`` / ``sandbox-key``), read here once at start-up.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from sandbox.config import (
    ANSWERS_CHOSEN,
    ANSWERS_DOCUMENTED,
    API_NAMES,
    FAULTS_ALL,
    FAULTS_SEND_ONLY,
    V1_PARAMS_ANY,
    V1_PARAMS_QUERY,
    FaultConfig,
    config_from_env,
    parse_apis,
)
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
    p.add_argument("--refusal-rate", type=float, default=0.0,
                   help="rate of SMPP refusals (--refusal-status) on v3 SMS sends")  # fmt: skip
    p.add_argument("--refusal-status", default="ESME_RSUBMITFAIL",
                   help="the SMPP status of a refusal")  # fmt: skip
    p.add_argument("--ambiguous-charge-rate", type=float, default=0.5,
                   help="share of 500/504 faults that charged the message first")  # fmt: skip
    p.add_argument("--faults-on-lookups", action="store_true",
                   help="fault every documented call, not only sends")  # fmt: skip
    p.add_argument("--fault-apis", type=_apis, default=API_NAMES, metavar="v3,v1,qr",
                   help="the APIs (hosts) whose calls are faulted (default: all)")  # fmt: skip
    p.add_argument("--limit-per-s", type=float, default=0.0,
                   help="provider limit per account and product (sends/s; 0 = off)")  # fmt: skip
    p.add_argument("--limit-burst", type=int, default=0,
                   help="burst of that limit (sends; 0 = one second's worth)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the fault and status RNGs")
    p.add_argument("--account", type=_account, action="append", default=[], metavar="USER:KEY",
                   help="serve one more account (own balances, ledger, faults, limit); "
                        "repeatable")  # fmt: skip
    p.add_argument(
        "--answers",
        choices=(ANSWERS_CHOSEN, ANSWERS_DOCUMENTED),
        default=ANSWERS_CHOSEN,
        help="send answers: chosen (with ids) or documented (as the collection shows)",
    )
    p.add_argument(
        "--v1-params",
        choices=(V1_PARAMS_QUERY, V1_PARAMS_ANY),
        default=V1_PARAMS_QUERY,
        help="v1 parameters: query (only the query string, as documented) or any",
    )
    p.add_argument("--step-delay-s", type=float, default=0.05, help="status step delay (s)")
    p.add_argument("--undeliverable-rate", type=float, default=0.0)
    p.add_argument("--email-open-rate", type=float, default=0.5,
                   help="probability a delivered e-mail gets ABIERTO")  # fmt: skip
    p.add_argument("--email-click-rate", type=float, default=0.2,
                   help="probability an opened e-mail gets CLICKEADO")  # fmt: skip
    p.add_argument("--status-hook-url", default=None, help="SMS status webhook URL")
    p.add_argument("--incoming-hook-url", default=None, help="incoming SMS webhook URL")
    return p


def _account(text: str) -> tuple[str, str]:
    user, colon, key = text.partition(":")
    if not (user and colon and key):
        raise argparse.ArgumentTypeError(f"{text.partition(':')[0]!r}: must be USER:KEY")
    return user, key


def _apis(text: str) -> tuple[str, ...]:
    try:
        return parse_apis(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> None:
    cli = parser()
    args = cli.parse_args(argv)
    try:
        faults = _faults(args)
    except ValueError as exc:  # a bad fault setting: named, exit 2, no traceback
        cli.error(str(exc))
    config = config_from_env(
        os.environ,
        faults=faults,
        seed=args.seed,
        step_delay_s=args.step_delay_s,
        undeliverable_rate=args.undeliverable_rate,
        email_open_rate=args.email_open_rate,
        email_click_rate=args.email_click_rate,
        sms_status_hook_url=args.status_hook_url,
        sms_incoming_hook_url=args.incoming_hook_url,
        accounts=tuple(args.account),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("sandbox").info(
        "sandbox on http://%s:%d (user %s)", args.host, args.port, config.api_user
    )
    run(host=args.host, port=args.port, config=config)


def _faults(args: argparse.Namespace) -> FaultConfig:
    return FaultConfig(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        rate_429=args.rate_429,
        retry_after_s=args.retry_after_s,
        throttle_rate=args.throttle_rate,
        drop_rate=args.drop_rate,
        refusal_rate=args.refusal_rate,
        refusal_status=args.refusal_status,
        ambiguous_charge_rate=args.ambiguous_charge_rate,
        applies_to=FAULTS_ALL if args.faults_on_lookups else FAULTS_SEND_ONLY,
        apis=args.fault_apis,
        seed=args.seed,
        answers=args.answers,
        v1_params=args.v1_params,
        limit_per_s=args.limit_per_s,
        limit_burst=args.limit_burst,
    )


if __name__ == "__main__":
    main()
