"""``connectus dlq list|show|replay|purge``: inspect, replay and purge dead letters.

Filters (``list``; ``replay``/``purge`` with ``--all``): ``--queue``, ``--reason``
(substring of the error class or last error), ``--older-than``/``--newer-than`` (``90s``,
``1h``, ``2d``). Poison entries, OTPs and jobs past their expiry are never replayed;
``list`` says why beside each.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from connectus_worker.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    JSON,
    console,
    fail,
    job_store,
    output,
    output_lines,
)

app = typer.Typer(
    help="Dead letters: jobs that failed permanently, with their reason.", no_args_is_help=True
)

QUEUE = typer.Option(None, "--queue", help="Only dead letters of this queue.")
REASON = typer.Option(None, "--reason", help="Substring of the error class or last error.")
OLDER = typer.Option(None, "--older-than", help="Dead-lettered at least this long ago (1h, 30m).")
NEWER = typer.Option(None, "--newer-than", help="Dead-lettered at most this long ago (1h, 30m).")
ALL = typer.Option(False, "--all", help="Every dead letter matching the filters.")
IDS = typer.Argument(None, help="Dead-lettered job ids (or use --all with filters).")


def _letters(ctx: typer.Context) -> Any:
    from connectus_worker.domain.expiry import AgeLimits
    from connectus_worker.ledger.deadletters import DeadLetters

    settings = ctx.obj()
    limits = AgeLimits(settings.max_message_age_s, settings.otp_max_age_s)
    return DeadLetters(job_store(settings), limits=limits)


def _filter(queue: str | None, reason: str | None, older: str | None, newer: str | None,
            as_json: bool) -> Any:  # fmt: skip
    from connectus_worker.ledger.deadletters import Filter, parse_duration

    try:
        return Filter(queue=queue, reason=reason,
                      older_than_s=parse_duration(older) if older else None,
                      newer_than_s=parse_duration(newer) if newer else None)  # fmt: skip
    except ValueError as exc:
        fail(f"--older-than/--newer-than: {exc}", as_json, code=EXIT_INVALID)


def _select(ctx: typer.Context, ids: list[str] | None, every: bool, where: Any,
            as_json: bool) -> tuple[Any, list[Any], list[str]]:  # fmt: skip
    """(dead letters, entries found, ids not in the set) for ids, or --all with filters."""
    letters = _letters(ctx)
    if bool(ids) == every:
        fail("give job ids, or --all (with filters), not both", as_json, code=EXIT_INVALID)
    if not ids:
        return letters, letters.find(where), []
    if where != type(where)():
        fail("filters apply to --all, not to listed ids", as_json, code=EXIT_INVALID)
    entries = {i: letters.get(i) for i in ids}
    return letters, [e for e in entries.values() if e], [i for i, e in entries.items() if not e]


@app.command("list")
def list_(
    ctx: typer.Context, queue: str | None = QUEUE, reason: str | None = REASON,
    older_than: str | None = OLDER, newer_than: str | None = NEWER,
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, newest first."),
    json_output: bool = JSON,
) -> None:  # fmt: skip
    """List dead letters (newest first) with their reason."""
    where = _filter(queue, reason, older_than, newer_than, json_output)
    rows = [e.as_dict() for e in _letters(ctx).find(where, limit=limit)]
    lines = []
    for row in rows:
        poison = "  (poison)" if row["poison"] else ""
        why_not = row["not_replayable_because"]
        refused = f"  (not replayable: {why_not})" if why_not and not row["poison"] else ""
        lines.append(f"{row['job_id']}  {row['kind']}  {row['queue']}  {row['error_class']}"
                     f"  {row['reason']}{poison}{refused}")  # fmt: skip
    output_lines({"dead_letters": rows, "count": len(rows)}, json_output,
           [*lines, f"{len(rows)} dead letter(s)"])  # fmt: skip


@app.command()
def show(ctx: typer.Context, job_id: str = typer.Argument(..., help="A dead-lettered job id "
         "(or poison entry)."), json_output: bool = JSON) -> None:  # fmt: skip
    """Show a dead letter: its record and its kept message (destination masked)."""
    letters = _letters(ctx)
    entry = letters.get(job_id)
    if entry is None:
        fail(f"{job_id}: not in the dead-letter set", json_output)
    data = {
        "dead_letter": entry.as_dict(),
        "record": entry.record.model_dump(mode="json") if entry.record else None,
        "message": letters.message(job_id),
    }
    if json_output:
        output(data, True)
        return

    output(data["dead_letter"], False, title=f"dead letter {job_id}")
    if data["record"]:
        output(data["record"], False, title="job record")
    console().print_json(json.dumps(data["message"], default=str))


@app.command()
def replay(
    ctx: typer.Context, job_ids: list[str] | None = IDS, every: bool = ALL,
    queue: str | None = QUEUE, reason: str | None = REASON, older_than: str | None = OLDER,
    newer_than: str | None = NEWER, json_output: bool = JSON,
) -> None:  # fmt: skip
    """Put dead letters back on their queue, keeping job id and idempotency key.

    Poison entries, OTPs and jobs past their expiry (they would expire again at once) are
    refused with the reason; exits 1 if any entry was not replayed.
    """
    where = _filter(queue, reason, older_than, newer_than, json_output)
    letters, entries, missing = _select(ctx, job_ids, every, where, json_output)
    results: list[dict[str, str]] = [{"job_id": i, "result": "missing"} for i in missing]
    results += letters.replay(entries)
    replayed = sum(1 for r in results if r["result"] == "replayed")
    if job_ids and len(job_ids) == 1 and results[0].get("error"):
        fail(f"{job_ids[0]}: {results[0]['error']}", json_output, job_id=job_ids[0])
    summary: dict[str, Any] = {"replayed": replayed, "results": results}
    if job_ids and len(job_ids) == 1:
        summary |= results[0]  # one job: its job_id and result at the top, too
    output_lines(summary, json_output, [f"{r['job_id']}: {r['result']}" for r in results])
    if replayed < len(results):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def purge(
    ctx: typer.Context, job_ids: list[str] | None = IDS, every: bool = ALL,
    queue: str | None = QUEUE, reason: str | None = REASON, older_than: str | None = OLDER,
    newer_than: str | None = NEWER,
    yes: bool = typer.Option(False, "--yes", help="Really remove; without it, only show."),
    json_output: bool = JSON,
) -> None:  # fmt: skip
    """Remove dead letters (poison entries included); without --yes, print what would go."""
    where = _filter(queue, reason, older_than, newer_than, json_output)
    letters, entries, missing = _select(ctx, job_ids, every, where, json_output)
    members = [e.member for e in entries]
    purged = letters.purge(members) if yes else 0
    summary = {"dry_run": not yes, "job_ids": members, "count": len(members), "purged": purged,
               "missing": missing}  # fmt: skip
    verb = "purged" if yes else "would purge"
    output_lines(summary, json_output, [*members, f"{verb} {len(members)} dead letter(s)"])
