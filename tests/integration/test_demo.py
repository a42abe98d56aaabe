"""``connectus demo`` end to end, in both of the sandbox's answer modes.

The demo's own machinery (real Redis, the sandbox with every fault on, two
worker processes) with a few dozen messages; judged by its summary, which is
checked against the sandbox's charge ledger. With ``--answers documented`` the
SMS, OTP and WhatsApp answers name no message: every one is still ``sent``
(none ``unknown`` for want of an id) and none is charged twice.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from devtools.demo import run_demo


def _row(text: str, label: str) -> int:
    match = re.search(rf"│ {re.escape(label)}\s*│\s*(\d+) │", text)
    assert match, f"no row {label!r} in:\n{text}"
    return int(match.group(1))


@pytest.mark.parametrize("answers", ["chosen", "documented"])
def test_the_demo_settles_every_job_and_charges_none_twice(
    answers: str, redis_url: str, redis_prefix: str, redis_client: Any
) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    code = run_demo(messages=60, processes=1, threads=8, timeout_s=120, answers=answers,
                    redis_url=redis_url, key_prefix=redis_prefix, console=console)  # fmt: skip
    text = out.getvalue()
    assert code == 0, text
    assert "OK: every job settled; nothing charged twice" in text
    assert _row(text, "messages charged twice") == 0
    assert _row(text, "unknown for want of a provider id") == 0
    sent = _row(text, "sent")
    assert sent >= 40  # 60 messages; a few fail (no such subclient) or stay unknown (faults)
    if answers == "documented":
        found = _row(text, "sent without a provider id, looked up: found")
        assert found > sent // 2  # SMS, OTP, WhatsApp and QR: most of the mix
    else:
        assert "sent without a provider id" not in text
