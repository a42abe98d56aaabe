"""``connectus console-password``: the CONSOLE_USERS entry of an operator, as a user runs it."""

from __future__ import annotations

import os
import subprocess

from connectus_worker.config.console_users import parse_users, verify_password
from tests.support.cli import CLI


def _run(args: list[str], typed: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "console-password", *args], input=typed, env=dict(os.environ),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_it_prints_an_entry_whose_hash_verifies_the_typed_password() -> None:
    result = _run(["ana", "--role", "admin"], "a-long-password\na-long-password\n")
    assert result.returncode == 0, result.stderr
    entry = result.stdout.strip()  # the entry alone: the prompts went to stderr
    operator = parse_users(entry)["ana"]
    assert operator.role == "admin" and operator.can_act
    assert verify_password("a-long-password", operator.password_hash)
    assert "a-long-password" not in result.stdout


def test_a_bad_role_or_a_short_password_is_refused_naming_it() -> None:
    role = _run(["ana", "--role", "boss"], "")
    assert role.returncode == 2 and "--role" in role.stderr
    short = _run(["ana"], "short\nshort\n")
    assert short.returncode == 2 and "password: use at least 12 characters" in short.stderr
