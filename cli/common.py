"""What every command shares: settings loading, output as a table or one JSON object."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from config import ConfigError, Settings, load_settings

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CONFIG = 78

console = Console()
err_console = Console(stderr=True)


def load_or_exit() -> Settings:
    """Read the settings once; on a bad variable, name it and exit 78."""
    try:
        return load_settings()
    except ConfigError as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc


def output(data: Mapping[str, Any], as_json: bool, *, title: str = "") -> None:
    """One JSON object on stdout for scripts, or a small table for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")
        return
    table = Table(title=title or None, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


def fail(message: str, as_json: bool, *, code: int = EXIT_FAILED, **extra: Any) -> NoReturn:
    """Report an error (as JSON on stdout with --json) and exit with ``code``."""
    if as_json:
        sys.stdout.write(json.dumps({"error": message, **extra}, ensure_ascii=False) + "\n")
    else:
        err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
