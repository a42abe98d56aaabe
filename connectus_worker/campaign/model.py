"""A campaign's vocabulary: its states, its transport, its send window and its record.

States (``Campaign.state``)::

    scheduled ──(deliver_at)──► running ──(all released, none pending)──► finished
        │                        │  ▲
        │ (later than            │  └──(window opens / resume)── window, paused
        │  max lateness)         └──(window closes)──► window
        ▼                        └──(operator)──► paused
      late ──(resume)──► running
    any but finished ──► cancelled

Only ``running`` (and ``finished``, for replays and reconciliation) lets
a job of the campaign be claimed; in any other state a worker that meets
one of its messages parks it until the campaign runs again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.redis import text


class CampaignState(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    WINDOW = "window"  # outside its send window: waits for the next opening
    PAUSED = "paused"  # by an operator
    LATE = "late"  # could not start within max lateness: waits for an explicit resume
    FINISHED = "finished"
    CANCELLED = "cancelled"


#: States an operator can pause, and states resume brings back to running.
PAUSABLE = frozenset({CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.WINDOW})
RESUMABLE = frozenset({CampaignState.PAUSED, CampaignState.LATE})
TERMINAL = frozenset({CampaignState.FINISHED, CampaignState.CANCELLED})


class Transport(StrEnum):
    """How recipients reach Connectus: one v3 call each, or v1 ``send_sms_bulk``."""

    V3 = "v3"
    V1_BULK = "v1_bulk"


_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Balance:
    """A Connectus balance a campaign draws on: ``source`` names it, ``available`` in
    units (SMS segments, e-mails); None when Connectus offers no way to ask."""

    source: str
    available: int | None


@dataclass(frozen=True, slots=True)
class Window:
    """A daily send window in the campaign's local time, e.g. 09:00-21:00.

    ``start == end`` is refused (ambiguous); ``start > end`` spans midnight
    (22:00-06:00). The end is exclusive.
    """

    start: time
    end: time | None  # None: midnight (24:00)

    @classmethod
    def parse(cls, text: str) -> Window:
        match = _WINDOW.match(text.strip())
        if not match:
            raise InvalidInput(
                "window", f"must look like 09:00-21:00 (24 h, local time), not {text!r}"
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 != 0:
            raise InvalidInput("window", "an end of 24:xx is not a time; use 24:00")
        start = time(h1, m1)
        end = None if h2 == 24 else time(h2, m2)
        if end == start:
            raise InvalidInput("window", "start and end are equal: give a window that has a length")
        return cls(start, end)

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"

    def is_open(self, local: datetime) -> bool:
        """Is ``local`` (an aware datetime in the campaign's zone) inside the window?"""
        now = local.time().replace(tzinfo=None)
        if self.end is None:
            return now >= self.start
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign as stored in ``{prefix}:campaign:{id}`` (times in epoch ms)."""

    campaign_id: str
    name: str
    kind: Kind
    transport: Transport
    state: CampaignState
    text: str
    subject: str | None
    fields: tuple[str, ...]
    src: str | None
    id_client: str | None
    timezone: str
    deliver_at_ms: int
    window: Window | None
    max_lateness_s: int  # 0: none
    total: int
    chunks: int
    chunk_size: int
    cursor: int  # chunks released so far
    segments: int
    created_ms: int
    started_ms: int | None
    finished_ms: int | None
    paused_reason: str | None
    # Who owns it (config/tenants.py); its jobs are this tenant's too.
    tenant: str = DEFAULT_TENANT
    # v3 only: each released chunk goes in a Connectus delivery of its own
    # (worker.campaign_deliveries); v1 bulk chunks always make one.
    connectus_delivery: bool = False
    # The Connectus account that sends it (config/accounts.py); None: written
    # before accounts existed, the first account sends it.
    account: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def chunk_rows(self, number: int) -> int:
        """How many recipients chunk ``number`` holds (the last one may be short)."""
        return max(0, min(self.chunk_size, self.total - number * self.chunk_size))

    @property
    def released(self) -> int:
        """Recipients of the released chunks (their jobs exist; a v1 bulk chunk's are
        made by its first claim, see :mod:`campaign.pending`)."""
        return min(self.total, self.cursor * self.chunk_size)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @classmethod
    def from_redis(cls, raw: Mapping[Any, Any]) -> Campaign:
        f = {text(k): text(v) for k, v in raw.items()}

        def opt_int(name: str) -> int | None:
            return int(f[name]) if f.get(name) else None

        return cls(
            campaign_id=f["campaign_id"],
            name=f["name"],
            kind=Kind(f["kind"]),
            transport=Transport(f["transport"]),
            state=CampaignState(f["state"]),
            text=f["text"],
            subject=f.get("subject") or None,
            fields=tuple(json.loads(f.get("fields") or "[]")),
            src=f.get("src") or None,
            id_client=f.get("id_client") or None,
            timezone=f["timezone"],
            deliver_at_ms=int(f["deliver_at"]),
            window=Window.parse(f["window"]) if f.get("window") else None,
            max_lateness_s=int(f.get("max_lateness_s") or 0),
            total=int(f["total"]),
            chunks=int(f["chunks"]),
            chunk_size=int(f["chunk_size"]),
            cursor=int(f.get("cursor") or 0),
            segments=int(f.get("segments") or 0),
            created_ms=int(f["created_at"]),
            started_ms=opt_int("started_at"),
            finished_ms=opt_int("finished_at"),
            paused_reason=f.get("paused_reason") or None,
            tenant=f.get("tenant") or DEFAULT_TENANT,
            connectus_delivery=f.get("connectus_delivery") == "1",
            account=f.get("account") or None,
        )
