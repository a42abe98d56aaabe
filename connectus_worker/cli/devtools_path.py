"""How ``connectus sandbox`` and ``connectus demo`` find the development tooling.

``sandbox/`` and ``devtools/`` are not installed with the package (a service that installs
it gets no top-level names of ours beside its own). They are imported from ``PYTHONPATH``
or the working directory, else from the checkout this package lives in (an editable
install); otherwise the command says so and exits 1.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import typer

#: The top-level packages of the development tooling.
DEV_PACKAGES = ("sandbox", "devtools")


def dev_tools_or_exit(command: str) -> None:
    """Make ``sandbox`` and ``devtools`` importable, or explain on stderr and exit 1."""
    if all(importlib.util.find_spec(name) is not None for name in DEV_PACKAGES):
        return
    checkout = Path(__file__).resolve().parents[2]
    if all((checkout / name / "__init__.py").is_file() for name in DEV_PACKAGES):
        sys.path.append(str(checkout))
        importlib.invalidate_caches()
        return
    typer.echo(
        f"error: `connectus {command}` needs the sandbox and the development tools (sandbox/, "
        "devtools/), which are not installed with the package: run it from a checkout of "
        "the repository (`make install`, then `make demo` or `make sandbox`), or put the "
        "checkout's root on PYTHONPATH.",
        err=True,
    )
    raise typer.Exit(1)
