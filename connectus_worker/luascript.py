"""Lua scripts kept in ``.lua`` files, read with :mod:`importlib.resources`.

A script lives in the ``lua/`` folder of the package that runs it (as Dramatiq keeps
its ``dispatch.lua``). Shared functions are ``lib_*.lua`` files, named one a line
before the code that needs them (``--! include lib_claim.lua``, or
``../campaign/lua/lib_new_record.lua``: a path relative to the including file).
:func:`load` returns one script: each included file once, depth first, then the file
itself; a missing file raises :class:`MissingScript` at import of its loader.
"""

from __future__ import annotations

import re
from importlib import resources

_INCLUDE = re.compile(r"^--! include (\S+)\s*$", re.MULTILINE)


class MissingScript(FileNotFoundError):
    """A ``.lua`` file named by :func:`load` or by an include is not installed."""


def load(package: str | None, name: str) -> str:
    """The text of ``<package>/lua/<name>``, its includes first; callers pass their
    own ``__package__``."""
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
