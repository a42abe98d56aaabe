"""``connectus``: the command line (typer + rich).

Settings are read once, in the top-level callback, and passed down through the typer
context. Exit codes: 0 ok, 1 operation failed, 2 bad input (usage or validation),
78 bad configuration (``EX_CONFIG``). Start-up time matters (one process per command):
command modules import only typer at the top, the rest inside the commands.
"""

from __future__ import annotations

import sys
from typing import Literal

import typer

from connectus_worker.cli import (
    account_cmd,
    breaker_cmd,
    campaign,
    clients_cmd,
    deliveries_cmd,
    dlq,
    optout_cmd,
    qr,
    review,
    send,
    serve_cmd,
    v1_cmd,
    worker_cmd,
)  # fmt: skip
from connectus_worker.cli.common import (
    EXIT_CONFIG,
    EXIT_INVALID,
    JSON,
    TENANT,
    fail,
    job_store,
    load_or_exit,
    output,
    tenant_or_exit,
)
from connectus_worker.cli.devtools_path import dev_tools_or_exit

app = typer.Typer(
    name="connectus",
    help="Deliver SMS, OTP, e-mail and WhatsApp through Connectus, reliably.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
GROUPS = {"send": send, "dlq": dlq, "campaign": campaign, "review": review, "qr": qr,
          "optout": optout_cmd, "clients": clients_cmd, "deliveries": deliveries_cmd,
          "v1": v1_cmd}  # fmt: skip
for name, group in GROUPS.items():
    app.add_typer(group.app, name=name)
app.command("account")(account_cmd.account)
app.command("worker")(worker_cmd.worker)
app.command("breaker")(breaker_cmd.breaker)
app.command("serve")(serve_cmd.serve)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Deliver SMS, OTP, e-mail and WhatsApp through Connectus, reliably."""
    from connectus_worker.logging import configure_logging

    # Logs go to stderr, redacted, warnings and worse: stdout is the command's answer
    # (--json is parsed by scripts). `worker` and `serve` reconfigure from LOG_LEVEL.
    configure_logging(level="WARNING", json=False)
    ctx.obj = load_or_exit


@app.command()
def status(ctx: typer.Context, job_id: str = typer.Argument(..., help="The id returned when "
           "the job was queued."), tenant: str = TENANT,
           json_output: bool = JSON) -> None:  # fmt: skip
    """Show a job's record: state, provider id, attempts, last error."""
    tenant_or_exit(tenant, json_output)
    settings = ctx.obj()
    store = job_store(settings)
    record = store.get(job_id)
    if record is None or record.campaign is not None or record.tenant != tenant:
        # A campaign's job (its campaign says whose), another tenant's, or perhaps a
        # v1 bulk recipient whose chunk no claim has reached yet. Imported only here:
        # the producers package costs start-up time (docs/benchmarks.md).
        from connectus_worker.producers.api import owned_record

        record = owned_record(settings, job_id, tenant, store)
    if record is None:
        fail(f"job_id: no job {job_id!r} (unknown, or its record expired)", json_output, code=1)
    data = record.model_dump(mode="json")
    if not json_output and record.provider_id is None and record.provider_id_lookup:
        lookup = record.provider_id_lookup
        data["provider_id"] = f"not known: {PROVIDER_ID_LOOKUP.get(lookup, lookup)}"
    output(data, json_output, title=f"job {job_id}")


#: What ``status`` says of a sent job whose answer named no provider id.
PROVIDER_ID_LOOKUP = {
    "pending": "Connectus's answer named none; being looked up",
    "not_found": "Connectus's answer named none, and no listing showed it",
    "no_listing": "Connectus's answer named none, and it has no listing to look in",
}


@app.command()
def cancel(ctx: typer.Context, job_id: str = typer.Argument(..., help="The job to cancel."),
           tenant: str = TENANT, json_output: bool = JSON) -> None:  # fmt: skip
    """Cancel a job that is queued, scheduled or waiting to retry."""
    tenant_or_exit(tenant, json_output)
    settings = ctx.obj()
    store = job_store(settings)
    from connectus_worker.producers.api import cancel_owned  # checks the owner, then cancels

    result = cancel_owned(settings, job_id, tenant, store)
    output({"job_id": job_id, "result": result}, json_output, title="cancel")
    if result != "cancelled":
        raise typer.Exit(1)


@app.command()
def demo(
    messages: int = typer.Option(300, min=1, max=100_000, help="How many messages to send."),
    processes: int = typer.Option(2, min=1, max=16, help="Worker processes."),
    threads: int = typer.Option(16, min=1, max=256, help="Threads per worker process."),
    timeout_s: float = typer.Option(180.0, help="Give up after this many seconds."),
    exit_at_once: bool = typer.Option(
        False, "--exit", help="Stop the stack after the summary, even in a terminal."
    ),
    answers: Literal["chosen", "documented"] = typer.Option(
        "chosen",
        help="How the sandbox answers sends: chosen (with ids) or documented (exactly "
        "as the Connectus collection shows: no id for SMS, OTP and WhatsApp).",
    ),
) -> None:
    """Start Redis (if needed), the sandbox with faults and workers; send and summarise."""
    dev_tools_or_exit("demo")
    from devtools.demo import run_demo

    raise typer.Exit(
        run_demo(
            messages=messages,
            processes=processes,
            threads=threads,
            timeout_s=timeout_s,
            answers=answers,
            keep_up=sys.stdin.isatty() and not exit_at_once,
        )
    )


@app.command(
    add_help_option=False,  # --help is the sandbox's own
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def sandbox(ctx: typer.Context) -> None:
    """Run the in-memory Connectus sandbox (v3, v1, WhatsApp QR and /_sandbox admin).

    Its flags are ``python -m sandbox``'s (``connectus sandbox --help``, docs/sandbox.md);
    credentials come from CONNECTUS_API_USER / CONNECTUS_API_KEY.
    """
    dev_tools_or_exit("sandbox")
    from sandbox.__main__ import main as run_sandbox

    run_sandbox(ctx.args)


@app.command("console-password")
def console_password(
    name: str = typer.Argument(..., help="The operator's name (1-64 of A-Z a-z 0-9 . _ @ -)."),
    role: Literal["admin", "read-only"] = typer.Option(
        "read-only", help="admin (may act) or read-only (sees only)."
    ),
) -> None:
    """Ask for a password (twice, not echoed); print the CONSOLE_USERS entry name:role:hash."""
    from connectus_worker.config.console_users import hash_password, parse_users

    # The prompts on stderr: stdout is the entry alone (`... > entry.txt`).
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    if len(password) < 12:
        fail("password: use at least 12 characters", False, code=EXIT_INVALID)
    entry = f"{name}:{role}:{hash_password(password)}"
    try:
        parse_users(entry)
    except ValueError as exc:
        fail(str(exc), False, code=EXIT_INVALID)
    print(entry)


def main() -> None:
    try:
        app()
    except ValueError as exc:
        # ConfigError is a ValueError; config (pydantic) is imported only by the commands
        # that read settings, so when one was raised this import is free.
        from connectus_worker.config import ConfigError

        if not isinstance(exc, ConfigError):
            raise
        print(f"connectus: configuration error: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


if __name__ == "__main__":
    main()
