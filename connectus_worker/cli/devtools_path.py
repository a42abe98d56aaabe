"""How `connectus sandbox` and `connectus demo` find the development tooling.

The sandbox, the embedded Redis and the local stack are development tools:
they are not installed with the package (pyproject's package list), so a
service that installs connectus-worker gets no top-level ``sandbox`` or
``devtools`` next to its own code. The two commands that need them import
them lazily, from wherever they are importable:

- ``PYTHONPATH`` or the working directory (``python -m connectus_worker.cli demo`` at a
  checkout's root; the Docker image puts them on ``PYTHONPATH``);
- else the checkout this ``cli`` package lives in (an editable install,
  ``make install``: ``.venv/bin/connectus demo`` works from any directory).

Otherwise the command stops with a message saying so, and nothing else in
the CLI depends on them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import typer

#: The top-level packages of the development tooling.
DEV_PACKAGES = ("sandbox", "devtools")


class DevToolsMissing(RuntimeError):
    """The sandbox and the development tools are not importable here."""


def require_devtools(command: str) -> None:
    """Make ``sandbox`` and ``devtools`` importable, or raise :class:`DevToolsMissing`."""
    if all(importlib.util.find_spec(name) is not None for name in DEV_PACKAGES):
        return
    checkout = Path(__file__).resolve().parents[2]
    if all((checkout / name / "__init__.py").is_file() for name in DEV_PACKAGES):
        sys.path.append(str(checkout))
        importlib.invalidate_caches()
        return
    raise DevToolsMissing(
        f"`connectus {command}` needs the sandbox and the development tools (sandbox/, "
        "devtools/), which are not installed with the package: run it from a checkout of "
        "the repository (`make install`, then `make demo` or `make sandbox`), or put the "
        "checkout's root on PYTHONPATH."
    )


def dev_tools_or_exit(command: str) -> None:
    """:func:`require_devtools`, or the message on stderr and exit code 1."""
    try:
        require_devtools(command)
    except DevToolsMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
