"""``connectus breaker``: the shared circuit breaker's scopes and rate limiter, as every
pod sees them; ``--close SCOPE`` ends a pause whose cause an operator fixed."""

from __future__ import annotations

from typing import Any

import typer

from connectus_worker.cli.common import EXIT_INVALID, JSON, console, fail, iso_time, output


def breaker(
    ctx: typer.Context,
    close: str = typer.Option("", "--close", metavar="SCOPE", help="Close this scope now "
                              "(e.g. account, balance:sms:CL, host:qr, qr_session), after "
                              "fixing its cause."),
    json_output: bool = JSON,
    account: str = typer.Option("", "--account", metavar="NAME", help="Only this Connectus "
                                "account (CONNECTUS_ACCOUNTS); --close needs it when there are "
                                "several (default: the first)."),
) -> None:  # fmt: skip
    """Show each account's open or half-open breaker scopes (why, until when), each
    host's failure streak and each product's rate."""
    from connectus_worker.redis import connect
    from connectus_worker.worker.accounts import accounts_status
    from connectus_worker.worker.breaker import CircuitBreaker

    settings = ctx.obj()
    if account and account not in settings.account_names:
        fail(f"--account: {account!r} is not in CONNECTUS_ACCOUNTS", json_output, code=EXIT_INVALID)
    client = connect(settings)
    closed = None
    if close:
        if not _valid_scope(close):
            fail(f"--close: {close!r} is not a scope (account, qr_session, host:v3|v1|qr, "
                 "product:<p>, balance:<p>[:<country>][@<subclient>])", json_output,
                 code=EXIT_INVALID)  # fmt: skip
        from connectus_worker.logging import configure_logging

        # The close is logged (who ended a pause, and when), on stderr like every log.
        configure_logging(level=settings.log_level, json=settings.log_json)
        circuit = CircuitBreaker.from_settings(settings, client, account or None)
        closed = {"account": circuit.account, "scope": close, "was": circuit.close(close)}
    every = accounts_status(settings, client)
    shown = [a for a in every if not account or a["account"] == account]
    if json_output:
        # "breaker" and "rates": the first account shown (the single-account answer).
        body = {"breaker": shown[0]["breaker"], "rates": shown[0]["rates"], "accounts": shown}
        if closed is not None:
            body["closed"] = closed
        output(body, True)
        return

    if closed is not None:
        console().print(f"closed {closed['scope']} of {closed['account']} (was {closed['was']})")
    for one in shown:
        _print_account(one["breaker"], one["rates"])


def _print_account(state: dict[str, Any], rates: list[dict[str, Any]]) -> None:
    console().print(f"circuit breaker of {state['account']}: {state['state']}")
    for scope in state["scopes"]:
        console().print(
            f"  {scope['scope']}: {scope['state']} until {iso_time(scope['open_until_ms'])}"
            f" ({scope['reason']}; since {iso_time(scope['since_ms'])},"
            f" opened {scope['consecutive_opens']}x, probes {scope['probes_in_flight']})",
            highlight=False,
        )
    streaks = ", ".join(f"{h} {n}" for h, n in state["consecutive_failures"].items())
    console().print(f"  failure streaks: {streaks}", highlight=False)
    for rate in rates:
        console().print(
            f"{rate['product']:>9}: {float(rate['rate_per_s']):.1f}/s of"
            f" {float(rate['configured_rate_per_s']):.1f}/s, burst {rate['burst']}"
        )


def _valid_scope(scope: str) -> bool:
    from connectus_worker.worker.breaker_scopes import ACCOUNT, HOSTS, QR_SESSION

    head, _, rest = scope.partition(":")
    if scope in (ACCOUNT, QR_SESSION):
        return True
    if head == "host":
        return rest in HOSTS
    return head in ("product", "balance") and bool(rest) and " " not in rest
