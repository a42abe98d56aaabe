"""The circuit breaker's Lua, read from ``worker/lua/breaker_*.lua`` (importlib.resources).

:mod:`worker.breaker` calls them. Each scope's state is one hash (``state``,
``failures``, ``opens``, ``successes``, ``since``, ``open_until``,
``reason``) and a sorted set of probe leases (member = probe id, score =
lease end); an index hash lists the scopes that are not closed (field =
scope, value = the end of its last open period). Each script is one round
trip. Times are epoch ms.
"""

from __future__ import annotations

from importlib import resources


def _script(name: str) -> str:
    lua = resources.files("worker") / "lua"
    return (lua / "breaker_common.lua").read_text() + (lua / f"breaker_{name}.lua").read_text()


ALLOW = _script("allow")
FAILURE = _script("failure")
SUCCESS = _script("success")
CLOSE = _script("close")
