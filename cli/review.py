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

from cli.common import fail, job_store, output

app = typer.Typer(help="Ambiguous sends held for an operator's decision.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(100, min=1, max=10_000, help="At most this many, oldest first."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the jobs held for review."""
    store = job_store(ctx.obj())
    rows = []
    for raw_id in store.client.zrange(store.keys.review, 0, limit - 1):
        job_id = raw_id.decode()
        record = store.get(job_id)
        rows.append({"job_id": job_id, "kind": record.kind if record else None,
                     "dst": record.dst if record else None,
                     "error": record.last_error if record else "record expired"})  # fmt: skip
    if json_output:
        sys.stdout.write(json.dumps({"review": rows, "count": len(rows)}, default=str) + "\n")
        return
    from cli.common import console

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
    store = job_store(ctx.obj())
    message = store.held_message(job_id, review=True)
    if message is None:
        fail(f"job_id: {job_id} is not held for review", json_output)
    done = store.resolve(job_id, "requeue", review=True, message=message)
    output({"job_id": job_id, "result": "requeued" if done else "not_unknown"}, json_output)
    if not done:
        raise typer.Exit(1)


@app.command()
def drop(
    ctx: typer.Context,
    job_id: str = typer.Argument(
        ..., help="The job to give up on (you checked it was delivered, or it no longer matters)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Give up on a held job: it becomes ``failed`` with the reason ``dropped after review``."""
    store = job_store(ctx.obj())
    if store.client.zscore(store.keys.review, job_id) is None:
        fail(f"job_id: {job_id} is not held for review", json_output)
    done = store.resolve(job_id, "fail", review=True, error_class="DroppedAfterReview",
                         reason="outcome unknown; dropped by an operator after review")  # fmt: skip
    output({"job_id": job_id, "result": "dropped" if done else "not_unknown"}, json_output)
    if not done:
        raise typer.Exit(1)
