"""``connectus dlq list|show|replay``: inspect and replay dead letters."""

from __future__ import annotations

import json
import sys

import typer

from cli.common import console, fail, output

app = typer.Typer(
    help="Dead letters: jobs that failed permanently, with their reason.", no_args_is_help=True
)


def _store(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from core.jobs import JobStore
    from core.keys import Keys
    from core.redis import connect

    settings = ctx.obj()
    return JobStore(connect(settings), Keys(settings.key_prefix), ttl_s=settings.job_ttl_s)


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, newest first."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List dead-lettered jobs with their reason."""
    store = _store(ctx)
    ids = [i.decode() for i in store.client.zrevrange(store.keys.dead_letters, 0, limit - 1)]
    rows = []
    for job_id in ids:
        record = store.get(job_id)
        reason = record.last_error if record else store.client.hget(
            store.keys.dead_letter_reasons, job_id)  # fmt: skip
        if isinstance(reason, bytes):
            reason = reason.decode()
        rows.append({"job_id": job_id, "kind": record.kind if record else None,
                     "error_class": record.error_class if record else "Malformed",
                     "reason": reason or "record expired"})  # fmt: skip
    if json_output:
        sys.stdout.write(json.dumps({"dead_letters": rows, "count": len(rows)}, default=str) + "\n")
        return
    for row in rows:
        console.print(f"{row['job_id']}  {row['kind']}  {row['error_class']}  {row['reason']}")
    console.print(f"{len(rows)} dead letter(s)")


@app.command()
def replay(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., help="The dead-lettered job to send again."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Put a dead letter back on its queue, keeping its job id and idempotency key."""
    store = _store(ctx)
    record = store.get(job_id)
    if record is not None and record.kind.is_otp:
        fail("an OTP is not replayed: its code was not kept and would be stale", json_output)
    result = store.replay(job_id)
    output({"job_id": job_id, "result": result}, json_output, title="replay")
    if result != "replayed":
        raise typer.Exit(1)
