"""The claim's answer: whether this delivery may send, and under which fence.

:meth:`ledger.jobs.JobStore.claim` and the send path's admission (:mod:`worker.pipeline`,
token and claim in one script) both answer with a :class:`Claim`, read from
the claim script's reply (``ledger/lua/claim.lua``) by :func:`claimed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer of :meth:`ledger.jobs.JobStore.claim`.

    ``status``: ``ok`` (you hold the lease: send), ``done`` (terminal already),
    ``busy`` (another worker holds a live lease), ``unknown`` (outcome
    ambiguous: reconcile), ``expired`` (a holder died mid-send; now
    ``unknown``), ``missing`` (no record: expired or never created),
    ``paused`` (its campaign is paused, outside its window or late: ``detail``
    says which; park the message).
    """

    status: Literal["ok", "done", "busy", "unknown", "expired", "missing", "paused"]
    fence: int = 0
    attempts: int = 0
    detail: str = ""


def claimed(answer: list[Any]) -> Claim:
    """Read the claim script's answer (see ``ledger/lua/claim.lua``)."""
    status = answer[0].decode()
    if status == "ok":
        return Claim("ok", fence=int(answer[1]), attempts=int(answer[2]))
    detail = answer[1].decode() if len(answer) > 1 else ""
    return Claim(status, detail=detail)
