"""The claim's answer: whether this delivery may send, and under which fence.

Read from ``ledger/lua/claim.lua``'s reply (and ``claim_bulk.lua``'s, one per row)
by :func:`claimed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from connectus_worker.redis import text


@dataclass(frozen=True, slots=True)
class Claim:
    """``status``: ``ok`` (you hold the lease: send), ``done`` (terminal already),
    ``busy`` (another worker holds a live lease), ``unknown`` (outcome ambiguous:
    reconcile), ``expired`` (a holder died mid-send; now ``unknown``), ``missing``
    (no record: expired or never created), ``paused`` (its campaign is paused,
    outside its window or late: ``detail`` says which; park the message).
    """

    status: Literal["ok", "done", "busy", "unknown", "expired", "missing", "paused"]
    fence: int = 0
    attempts: int = 0
    detail: str = ""


def claimed(answer: Sequence[Any]) -> Claim:
    """Read the claim script's answer (see ``ledger/lua/claim.lua``)."""
    status = text(answer[0])
    if status == "ok":
        return Claim("ok", fence=int(answer[1]), attempts=int(answer[2]))
    return Claim(status, detail=text(answer[1]) if len(answer) > 1 else "")  # type: ignore[arg-type]
