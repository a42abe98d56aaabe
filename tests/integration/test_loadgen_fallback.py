"""The sandbox load generator without wrk (a new machine has none) drives a real sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench import loadgen
from devtools.stack import LocalStack


def test_the_python_fallback_loads_the_sandbox(
    make_stack: Callable[..., LocalStack], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack = make_stack(start_workers=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk on this PATH
    load = loadgen.run(stack.sandbox_url, seconds=0.5, connections=4)
    assert load.requests > 0 and load.errors == 0
    assert load.p50_ms is not None and load.p99_ms is not None and load.p50_ms <= load.p99_ms
    assert "4 single-connection clients" in load.tool
