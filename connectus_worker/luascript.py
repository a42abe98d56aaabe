"""Lua scripts kept in ``.lua`` files, read with :mod:`importlib.resources`.

A script lives in the ``lua/`` folder of the package that runs it (as Dramatiq keeps
its ``dispatch.lua``). Shared functions are ``lib_*.lua`` files, named one a line
before the code that needs them (``--! include lib_claim.lua``, or
``../campaign/lua/lib_new_record.lua``: a path relative to the including file).
:func:`load` returns one script: each included file once, depth first, then the file
itself; a missing file raises :class:`MissingScript` at import of its loader.
"""

from __future__ import annotations

import posixpath
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
    _collect(posixpath.join(package.replace(".", "/"), "lua", name), parts, set(), ())
    return "".join(parts)


def _collect(path: str, parts: list[str], seen: set[str], chain: tuple[str, ...]) -> None:
    """Append ``path`` (``package/.../file.lua``) to ``parts`` after its includes."""
    if path in chain:
        raise ValueError(f"Lua include cycle: {' -> '.join((*chain, path))}")
    if path in seen:
        return
    text = _read(path)
    for included in _INCLUDE.findall(text):
        inner = posixpath.normpath(posixpath.join(posixpath.dirname(path), included))
        if inner.startswith(".."):
            raise MissingScript(f"Lua include {included!r} climbs above the top package")
        _collect(inner, parts, seen, (*chain, path))
    seen.add(path)
    parts.append(text if text.endswith("\n") else text + "\n")


def _read(path: str) -> str:
    top, _, rest = path.partition("/")
    try:
        return resources.files(top).joinpath(*rest.split("/")).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise MissingScript(
            f"{path}: Lua script not found (is it listed in pyproject's package-data?)"
        ) from exc
