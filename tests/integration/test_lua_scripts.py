"""Every Lua script, as :func:`core.luascript.load` assembles it, compiles in a real Redis.

fakeredis does not compile on SCRIPT LOAD; Redis does, so a concatenation
of fragments that breaks the syntax fails here, not at a worker's first call.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from core.luascript import load

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("config", "core", "producers", "worker", "service", "cli")
LUA_FILES = sorted(p for top in PRODUCT for p in (ROOT / top).glob("**/lua/*.lua"))


@pytest.mark.parametrize("lua_file", LUA_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_script_compiles_in_redis(lua_file: Path, redis_client: redis.Redis) -> None:
    package = ".".join(lua_file.parent.parent.relative_to(ROOT).parts)
    text = load(package, lua_file.name)
    if lua_file.name.startswith("lib_"):
        # A fragment only defines functions and locals: with an ending, it runs.
        assert redis_client.eval(text + "\nreturn 7", 0) == 7
    else:
        assert len(redis_client.script_load(text)) == 40
    with pytest.raises(redis.ResponseError):
        redis_client.script_load(text + "\nlocal = broken")


def test_the_product_has_lua_files() -> None:
    assert len(LUA_FILES) >= 30
