"""The ``connectus`` command line run as a subprocess, as a user or a script would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

CLI = [sys.executable, "-m", "connectus_worker.cli"]


def run(
    args: list[str], env: Mapping[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False
    )


def run_json(args: list[str], env: Mapping[str, str], code: int = 0) -> dict[str, Any]:
    result = run([*args, "--json"], env)
    assert result.returncode == code, result.stderr + result.stdout
    return dict(json.loads(result.stdout))


def run_json_together(commands: list[list[str]], env: Mapping[str, str]) -> list[dict[str, Any]]:
    """``run_json`` of each command, as processes running at the same time (each exits 0)."""
    procs = [
        subprocess.Popen(
            [*CLI, *args, "--json"],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    answers = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err + out
        answers.append(dict(json.loads(out)))
    return answers
