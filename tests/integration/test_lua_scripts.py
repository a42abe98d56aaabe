"""Every Lua script, as :func:`luascript.load` assembles it, compiles in a real Redis.

fakeredis does not compile on SCRIPT LOAD; Redis does, so a concatenation
of fragments that breaks the syntax fails here, not at a worker's first call.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from connectus_worker.luascript import load
from tests.support.lua_files import LUA_FILES, ROOT, package_of


@pytest.mark.parametrize("lua_file", LUA_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_script_compiles_in_redis(lua_file: Path, redis_client: redis.Redis) -> None:
    text = load(package_of(lua_file), lua_file.name)
    if lua_file.name.startswith("lib_"):
        # A fragment only defines functions and locals: with an ending, it runs.
        assert redis_client.eval(text + "\nreturn 7", 0) == 7
    else:
        assert len(redis_client.script_load(text)) == 40
    with pytest.raises(redis.ResponseError):
        redis_client.script_load(text + "\nlocal = broken")
