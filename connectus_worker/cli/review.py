"""``connectus review list|resend|drop``: jobs whose outcome can't be decided automatically.

An ambiguous e-mail send (Connectus has no listing to look in) under
``RECONCILE_UNDECIDABLE=review``, and a WhatsApp QR group message not found in the group's
last messages (a duplicate would reach the whole group), wait here for an operator.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from connectus_worker.cli.common import EXIT_FAILED, JSON, fail, job_store, output, output_lines

app = typer.Typer(help="Ambiguous sends held for an operator's decision.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(100, min=1, max=10_000, help="At most this many, oldest first."),
    json_output: bool = JSON,
) -> None:
    """List the jobs held for review."""
    from connectus_worker.ledger.review import held

    rows = held(job_store(ctx.obj()), limit=limit)
    lines = [f"{row['job_id']}  {row['kind']}  {row['dst']}  {row['error']}" for row in rows]
    output_lines({"review": rows, "count": len(rows)}, json_output,
                 [*lines, f"{len(rows)} job(s) held for review"])  # fmt: skip


#: The decisions: command → (the job id's help, the command's help).
DECISIONS = {
    "resend": ("The job to send again (you checked it was not delivered).",
               "Send a held job again: same job id, same idempotency key."),
    "drop": ("The job to give up on (you checked it was delivered, or it no longer matters).",
             "Give up on a held job: it becomes failed with the reason 'dropped after review'."),
}  # fmt: skip


def _decision(action: str, id_help: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        job_id: str = typer.Argument(..., help=id_help),
        json_output: bool = JSON,
    ) -> None:
        from connectus_worker.ledger import review

        result = getattr(review, action)(job_store(ctx.obj()), job_id)
        if result == "not_held":
            fail(f"job_id: {job_id} is not held for review", json_output)
        output({"job_id": job_id, "result": result}, json_output)
        if result == "not_unknown":
            raise typer.Exit(EXIT_FAILED)

    return command


for _action, (_id_help, _help) in DECISIONS.items():
    app.command(_action, help=_help)(_decision(_action, _id_help))
