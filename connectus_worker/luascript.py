"""Lua scripts kept in ``.lua`` files, read with :mod:`importlib.resources`.

A script lives in the ``lua/`` folder of the package whose code runs it
(``ledger/lua/claim.lua`` for :mod:`ledger.jobs`), as Dramatiq keeps its
``dispatch.lua``. ``pyproject.toml`` ships every ``lua/*.lua`` as package data.

Functions shared by several scripts (the campaign counts, the claim of one
job, ...) are files too, named ``lib_*.lua``. A file names what it needs,
one line each, before its own code::

    --! include lib_claim.lua
    --! include ../campaign/lua/lib_new_record.lua

A path is relative to the including file's folder (``..`` climbs one
package). :func:`load` returns the text every script then runs: each
included file once, depth first, in the order first named, then the file
itself. Redis sees one script, exactly as if it had been written out; a
fragment's ``local`` functions and variables are visible to what follows it.
A missing file raises :class:`MissingScript` naming it, at import time of
the module that loads it (scripts are loaded once, when a store is built).
"""

from __future__ import annotations

import re
from importlib import resources

_INCLUDE = re.compile(r"^--! include (\S+)\s*$", re.MULTILINE)


class MissingScript(FileNotFoundError):
    """A ``.lua`` file named by :func:`load` or by an include is not installed."""


def load(package: str | None, name: str) -> str:
    """The text of ``<package>/lua/<name>``, its includes first (see the module doc).

    ``package``: the dotted package that holds the ``lua/`` folder; callers
    pass their own ``__package__``.
    """
    if not package:
        raise ValueError(f"load({name!r}) needs the package that holds lua/ (__package__)")
    parts: list[str] = []
    _collect((*package.split("."), "lua"), name, parts, set(), ())
    return "".join(parts)


def _collect(
    folder: tuple[str, ...],
    name: str,
    parts: list[str],
    seen: set[tuple[str, ...]],
    chain: tuple[tuple[str, ...], ...],
) -> None:
    path = _resolve(folder, name)
    if path in chain:
        raise ValueError(f"Lua include cycle: {' -> '.join('/'.join(p) for p in (*chain, path))}")
    if path in seen:
        return
    text = _read(path)
    for included in _INCLUDE.findall(text):
        _collect(path[:-1], included, parts, seen, (*chain, path))
    seen.add(path)
    parts.append(text if text.endswith("\n") else text + "\n")


def _resolve(folder: tuple[str, ...], name: str) -> tuple[str, ...]:
    path = list(folder)
    for part in name.split("/"):
        if part == "..":
            if not path:
                raise MissingScript(f"Lua include {name!r} climbs above the top package")
            path.pop()
        elif part not in ("", "."):
            path.append(part)
    return tuple(path)


def _read(path: tuple[str, ...]) -> str:
    shown = "/".join(path)
    if len(path) < 2:
        raise MissingScript(f"{shown}: not a file inside a package")
    try:
        file = resources.files(path[0])
        for part in path[1:]:
            file = file.joinpath(part)
        return file.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise MissingScript(
            f"{shown}: Lua script not found (is it listed in pyproject's package-data?)"
        ) from exc
