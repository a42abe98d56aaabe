"""Issue 19's package layout: one import name, ``core/`` split by concept.

Run from a checkout's root, on a clean work tree::

    python3 tools/relayout.py            # apply (git mv + rewrites); prints what it did
    python3 tools/relayout.py --check    # exit 1 if anything is left to move or rewrite

Idempotent: a second run finds nothing to do. Standard library and ``git`` only.

What it does, in order:

1. **Moves** (``git mv``) every product package under ``connectus_worker/``, the one
   import name an install adds: ``worker``, ``producers``, ``config``, ``service``,
   ``cli`` keep their names below it, and ``core/`` is split by concept (:data:`CORE`):
   ``domain`` (what a message is, validation), ``ledger`` (the job records in Redis),
   ``transport`` (the Dramatiq broker and queues), ``logging`` (structured logs and
   redaction), ``campaign``; ``luascript`` and ``redis`` sit at the package's root.
   Each ``lua/`` file moves with the module that loads it.
2. **Keeps** ``worker/``, ``producers/`` and ``config/`` at the repository's top (the
   design card) as symbolic links into ``connectus_worker/``. The package itself is a
   plain directory tree, so the wheel, ``pip install -e .``, mypy and running from the
   checkout all see the same thing without an import hook (a ``package-dir`` mapping
   of separate top-level folders is invisible to mypy, which then types every
   cross-package import as ``Any``).
3. **Rewrites** what names a module: Python imports (``from core.jobs import`` ->
   ``from connectus_worker.ledger.jobs import``; ``import producers`` ->
   ``from connectus_worker import producers``); dotted paths in strings, comments and
   docs (``"worker.actors"``, ``cli.main:main``, ``:mod:`core.jobs```,
   ``python -m worker.process``); file paths (``core/jobs.py``,
   ``service/app.py``); ``--! include`` lines of the ``.lua`` files; pyproject's
   package list and mypy ``files``.

Files it does not rewrite: lock files, JSON results and profiles under ``bench/``
(recorded output), ``tests/schemas`` (vendored), this script, and the files written for
the new layout (:data:`SKIP_FILES`).

Status (session 11): written and applied on a branch (every unit test passed there),
not applied to main yet. Before applying it, bring :data:`CORE` up to date with
main's ``core/`` (``autopipeline`` is gone; ``countries`` and others are new), and
re-add ``docs/architecture.md`` and ``tests/unit/test_architecture.py`` (the import
rules of the new layout), which were written beside it.

On a tree where others kept working in the old layout (the final merge), run it on the
merged main *without* the branch's "apply relayout" commit, then ``make install`` (the
entry point changes), ``make lint`` and ``tests/unit``. It stops, naming the file, on
a module of ``core/`` it has no place for: add the module to :data:`CORE` and re-run.
A new ``core/lua`` script goes to ``ledger/lua`` unless named in
:data:`TRANSPORT_LUA`; ``tests/unit/test_luascript.py`` fails if that is wrong.
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import re
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Callable
from pathlib import Path

ROOT = Path.cwd()
PKG = "connectus_worker"

#: Top-level product packages that keep their name below ``connectus_worker``.
WHOLE = ("worker", "producers", "config", "service", "cli")
#: Of those, the ones that stay visible at the repository's top (symbolic links).
LINKED = ("worker", "producers", "config")

#: ``core/`` split by concept: new subpackage -> the modules of core/ it receives.
CORE: dict[str, tuple[str, ...]] = {
    "domain": (
        "models", "requests", "request_fields", "validation", "deliver_at", "expiry", "hashing",
        "countries",
    ),
    "ledger": (
        "jobs", "jobs_batch", "jobs_recovery", "claims", "deadletters",
        "delivery_status", "job_messages", "keys", "status_watch", "lookup", "history",
        "queue_stats", "review",
    ),
    "transport": ("broker", "routing"),
    "logging": ("logging", "redaction"),
    "": ("luascript", "redis", "durability", "tracing"),
}  # fmt: skip
#: Modules of core/ whose new name is not the old one.
RENAMES = {"logging.py": "logging/__init__.py"}
#: Lua scripts of core/lua that go with transport/broker.py; the rest go to ledger/.
TRANSPORT_LUA = ("ack_and_fetch.lua", "resync.lua", "quarantine.lua")

DOCSTRINGS = {
    "": "Connectus delivery worker: the one import name of the connectus-worker "
    "distribution.\n\nThe layout and the import rules are in docs/architecture.md.",
    "domain": "What a message is: kinds, send requests, their validation, deliver_at, "
    "expiry.\n\nPure: imports nothing else of the project but the logging package's "
    "masking helpers.",
    "ledger": "The job ledger in Redis: job records, claims, results, dead letters, "
    "delivery status.\n\nThe Lua scripts that change it live in ``lua/``.",
    "transport": "Dramatiq transport: the Redis broker subclass, its scripts, the queue "
    "of each kind.",
    "logging": "Structured logging and the redaction of secrets, phone numbers and e-mails.",
}

SKIP_PARTS = {".git", ".venv", "node_modules", "__pycache__", "build", "dist"}
SKIP_FILES = {
    "tools/relayout.py",
    "requirements.lock",
    "requirements-dev.lock",
    # Written for the new layout: their ``worker.connectus`` is already package-relative.
    "docs/architecture.md",
    "tests/unit/test_architecture.py",
}
SKIP_PREFIXES = ("tests/schemas/", "bench/profiles/", "bench/results", "bench/details")
TEXT_SUFFIXES = {
    ".py", ".md", ".toml", ".lua", ".yml", ".yaml", ".cfg", ".ini", ".txt", ".sh",
    ".example", ".json", "",
}  # fmt: skip


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


# ----------------------------------------------------------------------- moves ---


def file_moves() -> dict[str, str]:
    """Every product file's old path -> new path (files that still sit at the old path)."""
    moves: dict[str, str] = {}
    for name in WHOLE:
        old = ROOT / name
        if old.is_dir() and not old.is_symlink():
            for path in git("ls-files", name).split():
                moves[path] = f"{PKG}/{path}"
    core = ROOT / "core"
    if core.is_dir():
        for path in git("ls-files", "core").split():
            rel = path[len("core/") :]
            new = core_target(rel)
            if new is not None:
                moves[path] = new
    return moves


def core_target(rel: str) -> str | None:
    """New path of ``core/<rel>``; None for core/__init__.py (the package goes)."""
    if rel == "__init__.py":
        return None
    if rel in RENAMES:
        return f"{PKG}/{RENAMES[rel]}"
    if rel.startswith("campaign/"):
        return f"{PKG}/{rel}"
    if rel.startswith("lua/"):
        sub = "transport" if rel[4:] in TRANSPORT_LUA else "ledger"
        return f"{PKG}/{sub}/{rel}"
    stem = rel.removesuffix(".py")
    for sub, names in CORE.items():
        if stem in names:
            return f"{PKG}/{sub}/{rel}" if sub else f"{PKG}/{rel}"
    raise SystemExit(f"core/{rel}: no place for it in CORE; add it to tools/relayout.py")


def module_of(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def apply_moves(moves: dict[str, str], log: list[str]) -> None:
    for old, new in moves.items():
        (ROOT / new).parent.mkdir(parents=True, exist_ok=True)
        git("mv", old, new)
    if moves:
        log.append(f"git mv: {len(moves)} files")
    if (ROOT / "core" / "__init__.py").exists():
        git("rm", "-q", "core/__init__.py")
        log.append("git rm core/__init__.py")
    for sub, doc in DOCSTRINGS.items():
        init = ROOT / PKG / sub / "__init__.py"
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text(f'"""{doc}"""\n')
            git("add", str(init.relative_to(ROOT)))
            log.append(f"created {init.relative_to(ROOT)}")
    for leftover in (ROOT / "core", *(ROOT / n for n in WHOLE)):
        # What git mv leaves behind: folders of byte code only (anything else is reported).
        if leftover.is_dir() and not leftover.is_symlink():
            stray = [p for p in leftover.rglob("*") if p.is_file() and p.suffix != ".pyc"]
            if stray:
                raise SystemExit(f"untracked files left in {leftover.name}/: {stray[:5]}")
            for p in sorted(leftover.rglob("*"), reverse=True):
                p.unlink() if p.is_file() else p.rmdir()
            leftover.rmdir()
    for name in LINKED:
        link = ROOT / name
        if not link.is_symlink() and (ROOT / PKG / name).is_dir():
            link.symlink_to(f"{PKG}/{name}", target_is_directory=True)
            git("add", name)
            log.append(f"linked {name} -> {PKG}/{name}")


# --------------------------------------------------------------- the name maps ---


def name_maps(history: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(old dotted module -> new, old file path -> new) from the moves, done or to do.

    ``history`` holds the file moves (old -> new); for a second run, where nothing is
    left to move, it is rebuilt from the current tree, which gives the same maps.
    """
    modules: dict[str, str] = {}
    paths: dict[str, str] = dict(history)
    for old, new in history.items():
        if old.endswith(".py"):
            modules[module_of(old)] = module_of(new)
    for name in WHOLE:
        modules[name] = f"{PKG}.{name}"
    return modules, paths


def current_history() -> dict[str, str]:
    """The file moves, read back from the tree (after the moves, or on a re-run)."""
    history: dict[str, str] = {}
    pkg = ROOT / PKG
    if not pkg.is_dir():
        return history
    for path in git("ls-files", PKG).split():
        rel = path[len(PKG) + 1 :]
        top = rel.split("/")[0]
        if top in WHOLE:
            history[rel] = path
        elif top == "campaign":
            history[f"core/{rel}"] = path
        elif top in CORE and "/lua/" in rel:
            history[f"core/lua/{rel.split('/')[-1]}"] = path
        elif top in CORE and rel.count("/") == 1 and not rel.endswith("__init__.py"):
            history[f"core/{rel.split('/')[1]}"] = path
        elif rel == "logging/__init__.py":
            history["core/logging.py"] = path
        elif "/" not in rel and rel != "__init__.py":
            history[f"core/{rel}"] = path
    return history


# -------------------------------------------------------------------- rewrites ---


def attributes(package_dir: Path, bound: bool = True) -> set[str]:
    """Names a package exposes: its submodules and (``bound``) what its __init__ binds."""
    names = {p.stem for p in package_dir.glob("*.py")} | {
        p.name for p in package_dir.iterdir() if (p / "__init__.py").exists()
    }
    init = package_dir / "__init__.py"
    if init.exists() and bound:
        for node in ast.walk(ast.parse(init.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.ImportFrom):
                names.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    names.discard("__init__")
    return names


def dotted_pattern(modules: dict[str, str], bound: bool = True) -> re.Pattern[str]:
    """Old dotted names as they appear in text: ``core.jobs``, ``worker.actors.x``.

    Without ``bound``, ``producers.send_sms`` is left alone (documentation's code, after
    ``from connectus_worker import producers``); ``worker.actors`` still is a module path.
    """
    alternatives = []
    for name in WHOLE:
        where = ROOT / PKG / name if (ROOT / PKG / name).is_dir() else ROOT / name
        attrs = attributes(where, bound) if where.is_dir() else set()
        if attrs:
            alternatives.append(rf"{name}\.(?:{'|'.join(sorted(attrs, key=len, reverse=True))})")
    core = sorted((m for m in modules if m.startswith("core.")), key=len, reverse=True)
    alternatives += [re.escape(m) for m in core]
    body = "|".join(alternatives)
    # Not part of a longer dotted name or path (``sandbox.config.x``, ``a/worker.py``),
    # and not a file name (``worker.py``: the lookahead refuses a following ``py``).
    return re.compile(rf"(?<![\w./-])(?:{body})(?![\w])(?!\.py\b)")


def remap_dotted(name: str, modules: dict[str, str]) -> str:
    best = max((m for m in modules if name == m or name.startswith(m + ".")), key=len)
    return modules[best] + name[len(best) :]


def path_pattern(paths: dict[str, str]) -> re.Pattern[str]:
    dirs = {"core/lua/", "core/campaign/", "core/"} | {f"{n}/" for n in WHOLE if n not in LINKED}
    files = sorted((p for p in paths if not p.startswith(LINKED)), key=len, reverse=True)
    body = "|".join([*map(re.escape, files), *map(re.escape, sorted(dirs, key=len, reverse=True))])
    return re.compile(rf"(?<![\w./-])(?:{body})")


def remap_path(text: str, paths: dict[str, str]) -> str:
    if text in paths:
        return paths[text]
    if text == "core/lua/":
        return f"{PKG}/ledger/lua/"
    if text == "core/":
        return f"{PKG}/"
    return f"{PKG}/{text.removeprefix('core/')}"


PRODUCT_NAMES = {"config", "core", "producers", "worker", "service", "cli"}
#: A literal tuple or list of strings only: ``("config", "core", ...)``.
STRING_SEQUENCE = re.compile(r"""([(\[])(\s*(?:"[\w.-]+",?\s*)+)([)\]])""")
#: ``python -m cli``, ``"-m", "cli"``: the CLI run as a module.
DASH_M_CLI = re.compile(r"""(-m["']?,?\s*["']?)cli\b(?!/)""")


def product_sequences(text: str) -> str:
    """A literal list of the old top-level packages -> the one package, others kept."""

    def fix(m: re.Match[str]) -> str:
        items = re.findall(r'"([\w.-]+)"', m[2])
        if "core" not in items or len(PRODUCT_NAMES & set(items)) < 3:
            return m.group(0)
        first = next(n for n, i in enumerate(items) if i in PRODUCT_NAMES)
        kept = [i for i in items if i not in PRODUCT_NAMES]
        kept.insert(sum(1 for i in items[:first] if i not in PRODUCT_NAMES), PKG)
        new = [f'"{i}"' for i in kept]
        return f"{m[1]}{', '.join(new)}{',' if m[1] == '(' and len(new) == 1 else ''}{m[3]}"

    return STRING_SEQUENCE.sub(fix, text)


IMPORT_FROM = re.compile(
    r"^(\s*)from ((?:core|worker|producers|config|service|cli)(?:\.[\w.]+)?) import ", re.M
)
IMPORT_TOP = re.compile(r"^(\s*)import (worker|producers|config|service|cli)(\s*(?:#.*)?)$", re.M)
IMPORT_AS = re.compile(
    r"^(\s*)import ((?:core|worker|producers|config|service|cli)\.[\w.]+) as ", re.M
)


def rewrite_text(text: str, suffix: str, modules: dict[str, str], dotted: re.Pattern[str],
                 paths: re.Pattern[str], path_map: dict[str, str],
                 modules_only: re.Pattern[str]) -> str:  # fmt: skip
    text = DASH_M_CLI.sub(lambda m: f"{m[1]}{PKG}.cli", text)

    def sub_dotted(s: str) -> str:
        return dotted.sub(lambda m: remap_dotted(m.group(0), modules), s)

    def sub_paths(s: str) -> str:
        return paths.sub(lambda m: remap_path(m.group(0), path_map), s)

    def short(s: str) -> str:
        # Comments and docstrings name modules and files relative to the package
        # (``ledger.jobs``, ``ledger/jobs.py``), as the code around them reads.
        s = dotted.sub(lambda m: unprefixed(remap_dotted(m.group(0), modules)), s)
        return paths.sub(lambda m: unprefixed(remap_path(m.group(0), path_map)), s)

    if suffix == ".py":
        text = IMPORT_FROM.sub(lambda m: f"{m[1]}from {remap_dotted(m[2], modules)} import ", text)
        text = IMPORT_TOP.sub(lambda m: f"{m[1]}from {PKG} import {m[2]}{m[3]}", text)
        text = IMPORT_AS.sub(lambda m: f"{m[1]}import {remap_dotted(m[2], modules)} as ", text)
        text = product_sequences(text)
        return rewrite_python_strings(text, lambda s: sub_paths(sub_dotted(s)), short)
    if suffix == ".md":
        text = IMPORT_TOP.sub(lambda m: f"{m[1]}from {PKG} import {m[2]}{m[3]}", text)
        text = IMPORT_FROM.sub(lambda m: f"{m[1]}from {remap_dotted(m[2], modules)} import ", text)
    text = modules_only.sub(lambda m: remap_dotted(m.group(0), modules), text)
    return sub_paths(text)


def unprefixed(name: str) -> str:
    return name.removeprefix(f"{PKG}.").removeprefix(f"{PKG}/")


def rewrite_python_strings(
    text: str, code: Callable[[str], str], prose: Callable[[str], str]
) -> str:
    """``code`` applied to string literals, ``prose`` to comments and docstrings."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return text
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out, last = [], 0
    layout = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, None}
    layout_or_nl = {tokenize.NL, tokenize.COMMENT}
    significant = [t for t in tokens if t.type not in layout_or_nl]
    before = {id(t): (significant[i - 1].type if i else None) for i, t in enumerate(significant)}
    after = {
        id(t): (significant[i + 1].type if i + 1 < len(significant) else None)
        for i, t in enumerate(significant)
    }
    for tok in tokens:
        if tok.type in (tokenize.STRING, tokenize.COMMENT):
            start = offsets[tok.start[0] - 1] + tok.start[1]
            end = offsets[tok.end[0] - 1] + tok.end[1]
            docstring = (
                tok.type == tokenize.STRING
                and before.get(id(tok)) in layout
                and after.get(id(tok)) in (tokenize.NEWLINE, None)
            )
            fix = prose if tok.type == tokenize.COMMENT or docstring else code
            out.append(text[last:start])
            out.append(fix(text[start:end]))
            last = end
    out.append(text[last:])
    return "".join(out)


INCLUDE = re.compile(r"^(--! include )(\S+)(\s*)$", re.M)


def rewrite_lua_includes(
    text: str, rel: str, new_to_old: dict[str, str], old_to_new: dict[str, str]
) -> str:
    """``--! include`` paths that no longer resolve, re-pointed to where their file went."""

    def fix(m: re.Match[str]) -> str:
        target = os.path.normpath(os.path.join(os.path.dirname(rel), m[2]))
        if (ROOT / target).is_file():
            return m.group(0)
        old_self = new_to_old.get(rel, rel)
        old_target = os.path.normpath(os.path.join(os.path.dirname(old_self), m[2]))
        new_target = old_to_new.get(old_target)
        if new_target is None:
            raise SystemExit(f"{rel}: include {m[2]} names no known file")
        return m[1] + os.path.relpath(new_target, os.path.dirname(rel)) + m[3]

    return INCLUDE.sub(fix, text)


PYPROJECT_FIXES = (
    (re.compile(r'^include = \[[^\]]*"core\*"[^\]]*\]$', re.M), f'include = ["{PKG}*"]'),
    (
        re.compile(r'^files = \[[^\]]*"core"[^\]]*\]$', re.M),
        f'files = ["{PKG}", "devtools"]\n'
        f"# {PKG}/cli/ was never in mypy's files; its 4 errors are for a later change.\n"
        f'exclude = ["^{PKG}/cli/"]',
    ),
)
OTHER_FIXES = {
    # The checkout's root is one folder further up from the package's cli/.
    f"{PKG}/cli/devtools_path.py": (
        (
            re.compile(r"Path\(__file__\)\.resolve\(\)\.parent\.parent\b"),
            "Path(__file__).resolve().parents[2]",
        ),
    ),
    ".dockerignore": (
        (re.compile(r"^!core/$", re.M), f"!{PKG}/"),
        (re.compile(rf"^!(?:{'|'.join(WHOLE)})/\n", re.M), ""),
        (re.compile(rf"^!{PKG}/(?:{'|'.join(WHOLE)})/\n", re.M), ""),
    ),
    "Makefile": (
        (re.compile(r"mypy \(strict on [^)]*\)"), f"mypy (strict on {PKG}/ but cli/, devtools/)"),
    ),
}


def candidates() -> list[Path]:
    out = []
    for path in git("ls-files").split():
        p = ROOT / path
        if path in SKIP_FILES or path.startswith(SKIP_PREFIXES) or p.is_symlink():
            continue
        if SKIP_PARTS & set(Path(path).parts) or not p.is_file():
            continue
        if p.suffix in TEXT_SUFFIXES or p.name in {"Makefile", "Dockerfile"}:
            out.append(p)
    return out


def tidy(files: list[str], log: list[str]) -> None:
    """Sort the rewritten imports and re-wrap them (ruff), if ruff is installed here."""
    if not files:
        return
    venv_ruff = ROOT / ".venv/bin/ruff"
    ruff = str(venv_ruff) if venv_ruff.exists() else shutil.which("ruff")
    if ruff is None:
        log.append("ruff not found: run `ruff check --fix --select I . && ruff format .`")
        return
    subprocess.run([ruff, "check", "-q", "--fix", "--select", "I", *files], cwd=ROOT)
    subprocess.run([ruff, "format", "-q", *files], cwd=ROOT, check=True)
    log.append(f"ruff: imports sorted and formatted in {len(files)} files")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if work is left")
    check = parser.parse_args().check
    if not (ROOT / "pyproject.toml").is_file() or not (ROOT / ".git").exists():
        raise SystemExit("run from the repository's root")
    log: list[str] = []
    moves = file_moves()
    if check:
        if moves:
            log.append(f"{len(moves)} files to move")
    else:
        apply_moves(moves, log)
    history = {**current_history(), **moves}
    modules, path_map = name_maps(history)
    dotted, paths = dotted_pattern(modules), path_pattern(path_map)
    modules_only = dotted_pattern(modules, bound=False)
    new_to_old = {new: old for old, new in path_map.items()}
    changed = []
    for p in candidates():
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        rel = str(p.relative_to(ROOT))
        new = rewrite_text(text, p.suffix, modules, dotted, paths, path_map, modules_only)
        if rel == "pyproject.toml":
            for pattern, repl in PYPROJECT_FIXES:
                new = pattern.sub(repl, new)
        for pattern, repl in OTHER_FIXES.get(rel, ()):
            new = pattern.sub(repl, new)
        if p.suffix == ".lua" and not (check and moves):
            new = rewrite_lua_includes(new, rel, new_to_old, path_map)
        if new != text:
            changed.append(rel)
            if not check:
                p.write_text(new)
    if changed:
        log.append(
            f"rewrote {len(changed)} files: "
            + ", ".join(changed[:12])
            + (" ..." if len(changed) > 12 else "")
        )
    if changed and not check:
        tidy([c for c in changed if c.endswith(".py")], log)
    print("\n".join(log) or "nothing to do")
    return 1 if check and log else 0


if __name__ == "__main__":
    sys.exit(main())
