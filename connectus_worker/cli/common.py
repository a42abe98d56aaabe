"""What every command shares: settings, the job store, output as a table or JSON.

Heavy libraries (rich, pydantic settings, redis) are imported by the functions that use
them, so that ``--json`` and ``--help`` never load rich.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from inspect import Parameter, Signature
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from connectus_worker.config import Settings
    from connectus_worker.ledger.jobs import JobStore

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CONFIG = 78


@functools.cache
def console(stderr: bool = False) -> Console:
    """rich's console on stdout (or stderr), made on first use."""
    from rich.console import Console

    return Console(stderr=stderr)


def load_or_exit() -> Settings:
    """Read the settings once; on a bad variable, name it and exit 78."""
    from connectus_worker.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        console(stderr=True).print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc


def job_store(settings: Settings) -> JobStore:
    """The job records in Redis, as the workers and producers see them."""
    from connectus_worker.ledger.jobs import JobStore
    from connectus_worker.ledger.keys import Keys
    from connectus_worker.redis import connect

    return JobStore(connect(settings), Keys(settings.key_prefix), ttl_s=settings.job_ttl_s)


JSON = typer.Option(False, "--json", help="Print one JSON object.")
TENANT = typer.Option("default", "--tenant", help="Whose jobs and campaigns (INTAKE_TENANTS' "
                      "names; another tenant's do not exist for this command).")  # fmt: skip


def command_of(params: Mapping[str, tuple[Any, Any]], run: Callable[..., None]) -> Any:
    """A typer command that calls ``run(ctx, **values)``; its parameters are ``params``:
    name → (type, ``typer.Option(...)`` or ``typer.Argument(...)``), in this order."""

    def command(ctx: typer.Context, **values: Any) -> None:
        run(ctx, **values)

    command.__signature__ = Signature([  # type: ignore[attr-defined]
        Parameter("ctx", Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *(Parameter(name, Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
          for name, (annotation, default) in params.items()),
    ])  # fmt: skip
    return command


def tenant_or_exit(tenant: str, as_json: bool) -> str:
    """``tenant`` if it is a valid tenant name; otherwise exit 2 naming ``tenant``."""
    from connectus_worker.config.tenants import tenant_problem

    problem = tenant_problem(tenant)
    if problem is not None:
        fail(f"tenant: {problem}", as_json, code=EXIT_INVALID)
    return tenant


def output(data: Mapping[str, Any], as_json: bool, *, title: str = "") -> None:
    """One JSON object on stdout for scripts, or a small table for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")
    else:
        print_table(title, ("field", "value"), data.items(), header=False)


def output_lines(data: Mapping[str, Any], as_json: bool, lines: Iterable[str]) -> None:
    """``data`` as one JSON object, or ``lines`` (plain text) for people."""
    if as_json:
        output(data, True)
    else:
        for line in lines:
            typer.echo(line)


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, header: bool = True
) -> None:
    """``rows`` (a value per column; None shows empty) as a table on stdout."""
    from rich.table import Table

    table = Table(title=title or None, show_header=header)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console().print(table)


def fail(message: str, as_json: bool, *, code: int = EXIT_FAILED, **extra: Any) -> NoReturn:
    """Report an error (as JSON on stdout with --json) and exit with ``code``."""
    if as_json:
        sys.stdout.write(json.dumps({"error": message, **extra}, ensure_ascii=False) + "\n")
    else:
        console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def checked(as_json: bool, check: Callable[..., Any], value: Any, **kwargs: Any) -> Any:
    """``check(value, **kwargs)`` or exit 2 naming the field (nothing is called)."""
    from connectus_worker.domain.validation import InvalidInput

    try:
        return check(value, **kwargs)
    except InvalidInput as exc:
        fail(str(exc), as_json, code=EXIT_INVALID)


def iso_time(ms: int) -> str:
    """An epoch time in milliseconds as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")
