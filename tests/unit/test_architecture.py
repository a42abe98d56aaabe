"""The import rules of docs/architecture.md, checked on every module of the package.

Each package of ``connectus_worker`` may import only the packages its row of
:data:`ALLOWED` names (and itself). Imports inside functions count too: a lazy
import is still a dependency. No module imports a private name of Dramatiq,
redis-py or httpx (issue 19: such names change without notice between releases).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "connectus_worker"
BASE = {"config", "logging", "redis"}  # redis: the client factory and its reply helper
#: What every package that keeps state in Redis may use: the domain, the Lua loader,
#: confirmed writes.
STORE = {"domain", "luascript", "durability"}
#: What the processes (producers' callers, workers, the service) add: tracing.
RUNTIME = {"tracing"}
#: package -> the project's packages it may import (besides itself). ``client`` is
#: ``worker/connectus``: the Connectus client, which knows nothing of Dramatiq or Redis.
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "logging": {"config"},
    "luascript": set(),
    "redis": {"config"},
    "durability": {"config"},
    "tracing": {"config"},
    "domain": BASE,
    "ledger": BASE | STORE,
    "transport": BASE | STORE | {"ledger"},
    "campaign": BASE | STORE | {"ledger"},
    "client": BASE | {"domain", "campaign"},
    "producers": BASE | STORE | RUNTIME | {"ledger", "transport", "campaign"},
    "worker": BASE | STORE | RUNTIME | {"ledger", "transport", "campaign", "client"},
    "service": BASE | STORE | RUNTIME | {"ledger", "transport", "campaign", "producers", "worker"},
    "cli": set(),  # the entry point: may import everything (checked below as a wildcard)
}
#: Third-party packages the Connectus client must not import.
CLIENT_FORBIDDEN = {"dramatiq", "redis"}
LIBRARIES = {"dramatiq", "redis", "httpx"}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "connectus_worker" or len(parts) == 1:
        return None
    if parts[1:3] == ["worker", "connectus"]:
        return "client"
    return parts[1]


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement in the file."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            if node.module == "connectus_worker":
                found += [(f"connectus_worker.{name}", []) for name in names]
            else:
                found.append((node.module, names))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def package_of_file(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return package_of(".".join(("connectus_worker", *parts)))


def test_every_package_has_a_rule() -> None:
    packages = {package_of_file(path) for path in MODULES} - {None}
    assert packages - set(ALLOWED) == set()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path) -> None:
    me = package_of_file(path)
    if me is None:  # the package's own __init__: a docstring
        return
    wrong = []
    for module, names in imports(path):
        top = module.split(".")[0]
        if top in LIBRARIES and (
            any(part.startswith("_") for part in module.split("."))
            or any(name.startswith("_") for name in names)
        ):
            wrong.append(f"private name of {top}: {module} {names}")
        if me == "client" and top in CLIENT_FORBIDDEN:
            wrong.append(f"the Connectus client imports {module}")
        theirs = package_of(module)
        if theirs is None or theirs == me or me == "cli":
            continue
        if theirs not in ALLOWED[me]:
            wrong.append(f"{me} imports {module} ({theirs})")
    assert wrong == []


#: Issue 19: a module may run to 400 lines if it is one concept; a longer one is two.
MAX_MODULE_LINES = 400
#: What marks Lua source: its Redis calls and its key/argument tables.
LUA_MARKERS = ("redis.call(", "redis.pcall(", "KEYS[", "ARGV[")


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in MODULES
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_lua_in_python_strings(path: Path) -> None:
    """Lua lives in ``.lua`` files loaded by ``luascript`` (issue 19), not in strings."""
    strings = [
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert [s[:60] for s in strings if any(marker in s for marker in LUA_MARKERS)] == []
