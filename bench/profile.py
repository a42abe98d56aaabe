"""Where worker CPU goes: py-spy samples of a running worker, summarised.

``py-spy record --gil --format raw`` samples only the thread holding the GIL,
so each sample is a moment of Python CPU in the process (not a thread parked
on a socket). :func:`summarise` turns the collapsed stacks into the share of
samples that each function (inclusive) and each area of the code (by the
innermost recognised module on the stack) accounts for.

Run against a benchmark scenario with ``python -m bench --profile``; the
speedscope file and the summary land in ``bench/profiles/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

# Area of a frame, from its file; the first match from the leaf upwards wins.
AREAS: list[tuple[str, str]] = [
    ("structlog", "logging (structlog)"),
    ("logging/", "logging (stdlib)"),
    ("json/", "json"),
    ("httpcore", "HTTP (httpcore)"),
    ("httpx", "HTTP (httpx)"),
    ("h11", "HTTP (h11)"),
    # The client's boundary: building requests, streaming and checking answers.
    ("connectus/client.py", "HTTP (client.py)"),
    ("http/client.py", "HTTP (http.client)"),
    ("email/", "HTTP (http.client)"),
    ("ssl.py", "HTTP (ssl)"),
    ("socket.py", "socket"),
    ("redis/", "Redis client"),
    ("tenacity", "retry (tenacity)"),
    ("dramatiq", "dramatiq"),
    ("threading.py", "threading"),
    ("queue.py", "threading"),
    ("uuid.py", "uuid"),
    ("worker/", "project (worker/)"),
    ("connectus_worker/", "project (connectus_worker/)"),
]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    import sys

    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else None


def record(
    pid: int, *, seconds: float, out_raw: Path, out_speedscope: Path | None = None, rate: int = 100
) -> bool:
    """Sample ``pid`` for ``seconds``; False if py-spy is missing or failed."""
    exe = py_spy()
    if exe is None:
        return False
    base = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        str(rate),
        "--gil",
        "--nonblocking",
    ]
    ok = (
        subprocess.run(
            [*base, "--format", "raw", "--output", str(out_raw)], capture_output=True, check=False
        ).returncode
        == 0
    )
    if out_speedscope is not None and ok:
        subprocess.run(
            [*base, "--format", "speedscope", "--output", str(out_speedscope)],
            capture_output=True,
            check=False,
        )
    return ok


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for part in stack.split(";"):
        m = _FRAME.match(part.strip())
        out.append((m["func"], m["file"]) if m else (part, ""))
    return out


def summarise(raw: Path, *, top: int = 25) -> dict[str, Any]:
    """``{"samples", "areas": {area: share}, "functions": [(func, file, share)]}``."""
    inclusive: Counter[tuple[str, str]] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = _frames(stack)
        for frame in set(frames):
            inclusive[frame] += n
        area = "other"
        for _func, file in reversed(frames):
            hit = next((name for key, name in AREAS if key in file), None)
            if hit:
                area = hit
                break
        areas[area] += n
    if not total:
        return {"samples": 0, "areas": {}, "functions": []}
    return {
        "samples": total,
        "areas": {k: round(v / total, 3) for k, v in areas.most_common()},
        "functions": [
            (func, _short(file), round(n / total, 3))
            for (func, file), n in inclusive.most_common(top)
        ],
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file
