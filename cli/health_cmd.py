"""``connectus breaker``: the shared circuit breaker and rate limiter, as every pod sees them."""

from __future__ import annotations

import json
import sys

import typer

from cli.common import output


def breaker(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show the circuit breaker (state, why it opened, until when) and each product's rate."""
    from core.redis import connect
    from worker.breaker import CircuitBreaker
    from worker.ratelimit import RateLimiter

    settings = ctx.obj()
    client = connect(settings)
    state = CircuitBreaker.from_settings(settings, client).status()
    limiter = RateLimiter.from_settings(settings, client)
    rates = [limiter.status(product) for product in limiter.limits.buckets]
    if json_output:
        sys.stdout.write(json.dumps({"breaker": state, "rates": rates}) + "\n")
        return
    from cli.common import console

    output(state, False, title="circuit breaker")
    for rate in rates:
        console.print(
            f"{rate['product']:>9}: {float(rate['rate_per_s']):.1f}/s of"
            f" {float(rate['configured_rate_per_s']):.1f}/s, burst {rate['burst']}"
        )
