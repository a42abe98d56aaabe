"""``connectus optout list|show|add|remove``: the marketing opt-out set, by an operator.

Changes are recorded in the number's history with source ``cli`` (:mod:`producers.optout`).
Numbers are given as for a send (E.164 with or without '+', or national in DEFAULT_REGION).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import typer

from connectus_worker.cli.common import JSON, checked, iso_time, output, output_lines

app = typer.Typer(help="Marketing opt-outs: list, show, add and remove numbers.",
                  no_args_is_help=True)  # fmt: skip

NUMBER = typer.Argument(..., help="The phone number.")


def _context(ctx: typer.Context, number: str | None, as_json: bool) -> tuple[Any, Any, str]:
    """(redis client, keys, the number normalised) — a bad number exits 2 naming it."""
    from connectus_worker.domain.validation import normalize_number
    from connectus_worker.ledger.keys import Keys
    from connectus_worker.redis import connect

    settings = ctx.obj()
    digits = "" if number is None else checked(as_json, normalize_number, number, field="number",
                                               default_region=settings.default_region)  # fmt: skip
    return connect(settings), Keys(settings.key_prefix), digits


@app.command("list")
def list_(
    ctx: typer.Context,
    cursor: int = typer.Option(0, "--cursor", min=0, help="From a previous page's next_cursor."),
    count: int = typer.Option(1000, "--count", min=1, max=100_000, help="About this many."),
    json_output: bool = JSON,
) -> None:
    """Numbers opted out of marketing (a page; next_cursor 0 = the last one)."""
    from connectus_worker.producers.optout import list_opted_out

    client, keys, _ = _context(ctx, None, json_output)
    next_cursor, numbers = list_opted_out(client, keys, cursor=cursor, count=count)
    output_lines({"numbers": numbers, "next_cursor": next_cursor}, json_output, numbers)
    if next_cursor and not json_output:
        typer.echo(f"(more: --cursor {next_cursor})", err=True)


@app.command()
def show(ctx: typer.Context, number: str = NUMBER, json_output: bool = JSON) -> None:
    """Whether the number is opted out, and every recorded change (time, source)."""
    from connectus_worker.producers.optout import history, is_opted_out

    client, keys, digits = _context(ctx, number, json_output)
    changes = [c.to_json() for c in history(client, keys, digits, hash_key=ctx.obj().content_key)]
    data = {"number": digits, "opted_out": is_opted_out(client, keys, digits), "history": changes}
    if json_output:
        output(data, True)
        return
    output({"number": digits, "opted_out": data["opted_out"]}, False, title="opt-out")
    for c in changes:
        typer.echo(f"{iso_time(int(str(c['at_ms'])))}  {c['action']:<3}  {c['source']}"
                   f"{'' if c['changed'] else '  (no change)'}")  # fmt: skip


#: command → (the number's new state, help).
CHANGES: dict[str, tuple[Literal["out", "in"], str]] = {
    "add": ("out", "Opt the number out of marketing (as an incoming STOP does)."),
    "remove": ("in", "Opt the number back in to marketing (as an incoming ALTA or START does)."),
}


def _change(action: Literal["out", "in"]) -> Callable[..., None]:
    def command(ctx: typer.Context, number: str = NUMBER, json_output: bool = JSON) -> None:
        import time

        from connectus_worker.producers.optout import change

        client, keys, digits = _context(ctx, number, json_output)
        now_ms = int(time.time() * 1000)
        changed = change(client, keys, digits, action, source="cli", now_ms=now_ms,
                         hash_key=ctx.obj().content_key)  # fmt: skip
        output({"number": digits, "opted_out": action == "out", "changed": changed},
               json_output, title="opt-out")  # fmt: skip

    return command


for _name, (_action, _help) in CHANGES.items():
    app.command(_name, help=_help)(_change(_action))
