"""The circuit breaker's Lua: ``worker/lua/breaker_*.lua``, read by :func:`luascript.load`.

:mod:`worker.breaker` calls them. Each scope's state is one hash (``state``,
``failures``, ``opens``, ``successes``, ``since``, ``open_until``,
``reason``) and a sorted set of probe leases (member = probe id, score =
lease end); an index hash lists the scopes that are not closed (field =
scope, value = the end of its last open period). Each script is one round
trip. Times are epoch ms.
"""

from __future__ import annotations

from connectus_worker.luascript import load

ALLOW = load(__package__, "breaker_allow.lua")
FAILURE = load(__package__, "breaker_failure.lua")
SUCCESS = load(__package__, "breaker_success.lua")
CLOSE = load(__package__, "breaker_close.lua")
