"""The Lua scripts live in ``lua/*.lua`` files: every one loads, every name resolves.

:func:`luascript.load` is what every store calls at import time; a file
missing from the checkout (or from the installed package, see
``test_packaging.py``) must fail loudly, naming the file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest

from connectus_worker.luascript import MissingScript, load
from tests.support.lua_files import LUA_FILES, PRODUCT, ROOT, package_of

# load(__package__, "x.lua") or load("pkg.name", "x.lua") in product code.
LOAD_CALL = re.compile(r"""\bload\(\s*(__package__|"[\w.]+")\s*,\s*"([\w.-]+\.lua)"\s*\)""")


def test_the_product_has_lua_files() -> None:
    assert len(LUA_FILES) >= 30


@pytest.mark.parametrize("lua_file", LUA_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_lua_file_loads_with_its_includes(lua_file: Path) -> None:
    text = load(package_of(lua_file), lua_file.name)
    assert text.endswith(lua_file.read_text(encoding="utf-8"))
    # Each include's text is there exactly once, before the file's own code.
    for line in re.findall(r"^--! include (\S+)$", lua_file.read_text(), re.MULTILINE):
        included = (lua_file.parent / line).resolve().read_text(encoding="utf-8")
        assert text.count(included) == 1


def test_every_file_a_module_loads_exists() -> None:
    """A load() naming a file that is not there fails this test, not only at import."""
    calls = []
    for top in PRODUCT:
        for py in (ROOT / top).glob("**/*.py"):
            for package, name in LOAD_CALL.findall(py.read_text(encoding="utf-8")):
                folder = (
                    py.parent
                    if package == "__package__"
                    else ROOT.joinpath(*package.strip('"').split("."))
                )
                calls.append((py.relative_to(ROOT), folder / "lua" / name))
    assert len(calls) >= 25
    missing = [f"{py}: {path.relative_to(ROOT)}" for py, path in calls if not path.is_file()]
    assert missing == []
    # And every script (not a lib_ fragment) is loaded by some module.
    loaded = {path for _, path in calls}
    scripts = [p for p in LUA_FILES if not p.name.startswith("lib_")]
    assert [p.relative_to(ROOT) for p in scripts if p not in loaded] == []


def test_every_lib_fragment_is_included_somewhere() -> None:
    libs = [p for p in LUA_FILES if p.name.startswith("lib_")]
    assert libs
    texts = [p.read_text(encoding="utf-8") for p in LUA_FILES]
    for lib in libs:
        assert any(f"{lib.name}\n" in t and "--! include" in t for t in texts), lib


@pytest.fixture
def luapkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway package ``luapkg`` (with ``luapkg.sub``) on sys.path."""
    root = tmp_path / "luapkg"
    (root / "lua").mkdir(parents=True)
    (root / "sub" / "lua").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == "luapkg" or m.startswith("luapkg.")]:
        del sys.modules[name]


def test_includes_come_first_once_depth_first(luapkg: Path) -> None:
    (luapkg / "lua" / "lib_a.lua").write_text("local a = 1\n")
    (luapkg / "lua" / "lib_b.lua").write_text("--! include lib_a.lua\nlocal b = a + 1\n")
    (luapkg / "sub" / "lua" / "main.lua").write_text(
        "--! include ../../lua/lib_b.lua\n--! include ../../lua/lib_a.lua\nreturn b\n"
    )
    text = load("luapkg.sub", "main.lua")
    assert text.index("local a = 1") < text.index("local b = a + 1") < text.index("return b")
    assert text.count("local a = 1") == 1
    assert fakeredis.FakeRedis().eval(text, 0) == 2


def test_a_missing_script_names_the_file(luapkg: Path) -> None:
    with pytest.raises(MissingScript, match=r"luapkg/lua/nope\.lua: Lua script not found"):
        load("luapkg", "nope.lua")


def test_a_missing_include_names_the_file(luapkg: Path) -> None:
    (luapkg / "lua" / "main.lua").write_text("--! include lib_gone.lua\nreturn 1\n")
    with pytest.raises(MissingScript, match=r"luapkg/lua/lib_gone\.lua"):
        load("luapkg", "main.lua")


def test_an_include_cycle_is_refused(luapkg: Path) -> None:
    (luapkg / "lua" / "lib_a.lua").write_text("--! include lib_b.lua\n")
    (luapkg / "lua" / "lib_b.lua").write_text("--! include lib_a.lua\n")
    with pytest.raises(ValueError, match="include cycle"):
        load("luapkg", "lib_a.lua")


def test_load_needs_a_package() -> None:
    with pytest.raises(ValueError, match="__package__"):
        load(None, "claim.lua")
