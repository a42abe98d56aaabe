"""The product's Lua files, for the tests that load and compile each one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The product's top-level packages (where ``lua/`` folders may live).
PRODUCT = ("connectus_worker",)
LUA_FILES = sorted(p for top in PRODUCT for p in (ROOT / top).glob("**/lua/*.lua"))


def package_of(lua_file: Path) -> str:
    """The package that loads ``lua_file`` (the parent of its ``lua/`` folder)."""
    return ".".join(lua_file.parent.parent.relative_to(ROOT).parts)
