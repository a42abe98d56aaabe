"""``connectus sandbox``: run the local Connectus sandbox in the foreground.

A plain function with typer-style annotations; the CLI registers it with
``app.command("sandbox")(sandbox_command)``. Credentials come from
``CONNECTUS_API_USER`` / ``CONNECTUS_API_KEY`` (defaults ``sandbox`` /
``sandbox-key``), read once when the command runs.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from connectus_worker.cli.devtools_path import dev_tools_or_exit


def sandbox_command(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8081,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="Added latency on send calls (ms).")] = 0,
    jitter_ms: Annotated[float, typer.Option(help="± uniform jitter on the latency (ms).")] = 0,
    error_rate: Annotated[float, typer.Option(help="Rate of HTTP 500/502/503/504.")] = 0,
    rate_429: Annotated[float, typer.Option(help="Rate of HTTP 429.")] = 0,
    retry_after_s: Annotated[int, typer.Option(help="Retry-After of a 429 (s).")] = 1,
    throttle_rate: Annotated[float, typer.Option(help="Rate of ESME_RTHROTTLED.")] = 0,
    drop_rate: Annotated[
        float, typer.Option(help="Rate of accepted-and-charged, then connection dropped.")
    ] = 0,
    refusal_rate: Annotated[
        float, typer.Option(help="Rate of SMPP refusals (--refusal-status) on v3 SMS sends.")
    ] = 0,
    refusal_status: Annotated[
        str, typer.Option(help="The SMPP status of a refusal.")
    ] = "ESME_RSUBMITFAIL",
    ambiguous_charge_rate: Annotated[
        float, typer.Option(help="Share of 500/504 faults that charged the message first.")
    ] = 0.5,
    faults_on_lookups: Annotated[
        bool, typer.Option(help="Fault every documented call, not only sends.")
    ] = False,
    fault_apis: Annotated[
        str, typer.Option(help="The APIs (hosts) whose calls are faulted: v3,v1,qr.")
    ] = "v3,v1,qr",
    limit_per_s: Annotated[
        float, typer.Option(help="Provider rate limit per account and product (sends/s; 0 = off).")
    ] = 0,
    limit_burst: Annotated[
        int, typer.Option(help="Burst of that limit (sends; 0 = one second's worth).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the fault and status RNGs.")] = 0,
    answers: Annotated[
        str,
        typer.Option(help="Send answers: chosen (with ids) or documented (as the collection)."),
    ] = "chosen",
    v1_params: Annotated[
        str,
        typer.Option(help="v1 parameters: query (only the query string, as documented) or any."),
    ] = "query",
    step_delay_s: Annotated[float, typer.Option(help="Delay between status steps (s).")] = 0.05,
    undeliverable_rate: Annotated[
        float, typer.Option(help="Share of messages that end NO_ENTREGABLE.")
    ] = 0,
    email_open_rate: Annotated[
        float, typer.Option(help="Share of delivered e-mails that get ABIERTO.")
    ] = 0.5,
    email_click_rate: Annotated[
        float, typer.Option(help="Share of opened e-mails that get CLICKEADO.")
    ] = 0.2,
    status_hook_url: Annotated[str | None, typer.Option(help="SMS status webhook URL.")] = None,
    incoming_hook_url: Annotated[str | None, typer.Option(help="Incoming SMS webhook URL.")] = None,
    account: Annotated[
        list[str] | None,
        typer.Option(
            help="One more account USER:KEY (own balances, ledger, faults, limit; "
            "admin calls pick it by the X-Sandbox-Account header); repeatable."
        ),
    ] = None,
) -> None:
    """Run the in-memory Connectus sandbox (v3, v1, WhatsApp QR and /_sandbox admin)."""
    dev_tools_or_exit("sandbox")
    from sandbox.config import (
        FAULTS_ALL,
        FAULTS_SEND_ONLY,
        FaultConfig,
        config_from_env,
        parse_apis,
    )
    from sandbox.server import run  # uvicorn is imported only when the command runs

    try:
        apis = parse_apis(fault_apis)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault-apis") from exc

    try:
        faults = FaultConfig(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            rate_429=rate_429,
            retry_after_s=retry_after_s,
            throttle_rate=throttle_rate,
            drop_rate=drop_rate,
            refusal_rate=refusal_rate,
            refusal_status=refusal_status,
            ambiguous_charge_rate=ambiguous_charge_rate,
            applies_to=FAULTS_ALL if faults_on_lookups else FAULTS_SEND_ONLY,
            apis=apis,
            seed=seed,
            answers=answers,
            v1_params=v1_params,
            limit_per_s=limit_per_s,
            limit_burst=limit_burst,
        )
    except ValueError as exc:  # a bad fault setting: named, exit 2, no traceback
        raise typer.BadParameter(str(exc)) from exc
    try:
        config = config_from_env(
            os.environ,
            faults=faults,
            seed=seed,
            step_delay_s=step_delay_s,
            undeliverable_rate=undeliverable_rate,
            email_open_rate=email_open_rate,
            email_click_rate=email_click_rate,
            sms_status_hook_url=status_hook_url,
            sms_incoming_hook_url=incoming_hook_url,
            accounts=tuple(_account_pair(text) for text in account or []),
        )
    except ValueError as exc:  # e.g. one user named twice
        raise typer.BadParameter(str(exc), param_hint="--account") from exc
    typer.echo(f"Connectus sandbox on http://{host}:{port} (user {config.api_user})")
    run(host=host, port=port, config=config)


def _account_pair(text: str) -> tuple[str, str]:
    """``USER:KEY`` as a pair; a bad one names the option (never the key)."""
    user, colon, key = text.partition(":")
    if not (user and colon and key):
        raise typer.BadParameter(f"{user!r}: must be USER:KEY", param_hint="--account")
    return user, key
