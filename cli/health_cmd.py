"""``connectus breaker``: the shared circuit breaker's scopes and rate limiter, as every
pod sees them; ``--close SCOPE`` ends a pause whose cause an operator fixed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import typer


def breaker(
    ctx: typer.Context,
    close: str = typer.Option(
        "",
        "--close",
        metavar="SCOPE",
        help="Close this scope now (e.g. account, balance:sms:CL, host:qr, qr_session), after "
        "fixing "
        "its cause.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show each open or half-open breaker scope (why, until when), each host's failure
    streak and each product's rate."""
    from cli.common import fail
    from core.redis import connect
    from worker.breaker import CircuitBreaker
    from worker.ratelimit import RateLimiter

    settings = ctx.obj()
    client = connect(settings)
    circuit = CircuitBreaker.from_settings(settings, client)
    closed = None
    if close:
        if not _valid_scope(close):
            fail(f"--close: {close!r} is not a scope (account, qr_session, host:v3|v1|qr, "
                 "product:<p>, "
                 "balance:<p>[:<country>][@<subclient>])", json_output, code=2)  # fmt: skip
        from core.logging import configure_logging

        # The close is logged (who ended a pause, and when), on stderr like every log.
        configure_logging(level=settings.log_level, json=settings.log_json)
        closed = {"scope": close, "was": circuit.close(close)}
    state = circuit.status()
    limiter = RateLimiter.from_settings(settings, client)
    rates = [limiter.status(product) for product in limiter.limits.buckets]
    if json_output:
        body = {"breaker": state, "rates": rates}
        if closed is not None:
            body["closed"] = closed
        sys.stdout.write(json.dumps(body) + "\n")
        return
    from cli.common import console

    if closed is not None:
        console.print(f"closed {closed['scope']} (was {closed['was']})")
    console.print(f"circuit breaker of {state['account']}: {state['state']}")
    for scope in state["scopes"]:
        console.print(
            f"  {scope['scope']}: {scope['state']} until {_when(scope['open_until_ms'])}"
            f" ({scope['reason']}; since {_when(scope['since_ms'])},"
            f" opened {scope['consecutive_opens']}x, probes {scope['probes_in_flight']})",
            highlight=False,
        )
    streaks = ", ".join(f"{h} {n}" for h, n in state["consecutive_failures"].items())
    console.print(f"  failure streaks: {streaks}", highlight=False)
    for rate in rates:
        console.print(
            f"{rate['product']:>9}: {float(rate['rate_per_s']):.1f}/s of"
            f" {float(rate['configured_rate_per_s']):.1f}/s, burst {rate['burst']}"
        )


def _valid_scope(scope: str) -> bool:
    from worker.breaker_scopes import ACCOUNT, HOSTS, QR_SESSION

    head, _, rest = scope.partition(":")
    if scope in (ACCOUNT, QR_SESSION):
        return True
    if head == "host":
        return rest in HOSTS
    return head in ("product", "balance") and bool(rest) and " " not in rest


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")
