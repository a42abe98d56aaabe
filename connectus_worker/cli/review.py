"""``connectus review list|resend|drop``: jobs whose outcome can't be decided automatically.

An ambiguous send (it may have been sent and charged) of a kind Connectus
offers no listing for, e-mail, is held here under ``RECONCILE_UNDECIDABLE=review``;
so is a WhatsApp QR group message not found in the group's last messages (whatever
that setting: a duplicate would reach the whole group).
An operator checks (the recipient's inbox, Connectus's platform) and decides.
"""

from __future__ import annotations

import json
import sys

import typer

from connectus_worker.cli.common import fail, job_store, output

app = typer.Typer(help="Ambiguous sends held for an operator's decision.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(100, min=1, max=10_000, help="At most this many, oldest first."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the jobs held for review."""
    from connectus_worker.ledger.review import held

    rows = held(job_store(ctx.obj()), limit=limit)
    if json_output:
        sys.stdout.write(json.dumps({"review": rows, "count": len(rows)}, default=str) + "\n")
        return
    from connectus_worker.cli.common import console

    for row in rows:
        console.print(f"{row['job_id']}  {row['kind']}  {row['dst']}  {row['error']}")
    console.print(f"{len(rows)} job(s) held for review")


@app.command()
def resend(
    ctx: typer.Context,
    job_id: str = typer.Argument(
        ..., help="The job to send again (you checked it was not delivered)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Send a held job again: same job id, same idempotency key."""
    from connectus_worker.ledger.review import resend as resend_held

    _decided(job_id, resend_held(job_store(ctx.obj()), job_id), json_output)


@app.command()
def drop(
    ctx: typer.Context,
    job_id: str = typer.Argument(
        ..., help="The job to give up on (you checked it was delivered, or it no longer matters)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Give up on a held job: it becomes ``failed`` with the reason ``dropped after review``."""
    from connectus_worker.ledger.review import drop as drop_held

    _decided(job_id, drop_held(job_store(ctx.obj()), job_id), json_output)


def _decided(job_id: str, result: str, as_json: bool) -> None:
    if result == "not_held":
        fail(f"job_id: {job_id} is not held for review", as_json)
    output({"job_id": job_id, "result": result}, as_json)
    if result == "not_unknown":
        raise typer.Exit(1)
