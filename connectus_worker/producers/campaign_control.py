"""Operating a campaign: pause, resume, cancel, its status, its report.

Control is one atomic state change in Redis (``campaign/lua/control.lua``):
every worker sees it at its next claim, so a cancel stops every pod within
one send, and a cancel before ``deliver_at`` sends nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectus_worker.campaign.links import ShortLinkRef
from connectus_worker.campaign.links import load as load_links
from connectus_worker.campaign.model import PAUSABLE, RESUMABLE, TERMINAL, Campaign, CampaignState
from connectus_worker.campaign.pending import pending_state
from connectus_worker.campaign.store import CampaignStore, Control, job_id_for
from connectus_worker.config.tenants import DEFAULT_TENANT

S = CampaignState
REPORT_COLUMNS = ("index", "recipient", "state", "provider_id", "delivery_status", "error_class",
                  "error", "attempts", "sent_at",
                  "email_opened_at", "email_clicked_at")  # fmt: skip


class CampaignNotFound(LookupError):
    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        super().__init__(f"campaign_id: no campaign {campaign_id!r} (unknown, or it expired)")


class CampaignStateError(ValueError):
    """The campaign is not in a state the operation applies to."""


@dataclass(frozen=True)
class CampaignStatus:
    campaign: Campaign
    counts: dict[str, int]  # released jobs by state
    parked: int
    deliveries: int  # Connectus deliveries (v1 bulks, v3 chunks with connectus_delivery)
    now_ms: int

    @property
    def unreleased(self) -> int:
        return self.campaign.total - self.campaign.released

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("sent", "failed", "cancelled"))

    @property
    def rate_per_s(self) -> float | None:
        """Average finished recipients per second since the campaign started."""
        started = self.campaign.started_ms
        if started is None or self.now_ms <= started:
            return None
        end = self.campaign.finished_ms or self.now_ms
        return self.done / max((end - started) / 1000, 0.001)

    @property
    def eta_s(self) -> float | None:
        rate = self.rate_per_s
        remaining = self.campaign.total - self.done - self.counts.get("unknown", 0)
        if self.campaign.terminal or remaining <= 0:
            return 0.0
        return remaining / rate if rate else None

    def to_json(self) -> dict[str, Any]:
        """The status as :class:`CampaignStatusOut` gives it (CLI, HTTP, console)."""
        c = self.campaign
        counts = dict(self.counts)
        if self.unreleased:
            key = "cancelled" if c.state is S.CANCELLED else "pending"
            counts[key] = counts.get(key, 0) + self.unreleased
        return CampaignStatusOut(
            campaign_id=c.campaign_id,
            name=c.name,
            kind=c.kind.value,
            transport=c.transport.value,
            state=c.state.value,
            reason=c.paused_reason,
            total=c.total,
            released=c.released,
            counts=counts,
            parked=self.parked,
            deliveries=self.deliveries,
            segments=c.segments,
            deliver_at_ms=c.deliver_at_ms,
            window=str(c.window) if c.window else None,
            timezone=c.timezone,
            started_ms=c.started_ms,
            finished_ms=c.finished_ms,
            rate_per_s=None if self.rate_per_s is None else round(self.rate_per_s, 1),
            eta_s=None if self.eta_s is None else round(self.eta_s, 1),
        ).model_dump(mode="json")


class CampaignStatusOut(BaseModel):
    """A campaign's state and progress (:meth:`CampaignStatus.to_json`)."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    name: str
    kind: Literal["sms", "email", "whatsapp"]
    transport: Literal["v3", "v1_bulk"]
    state: Literal["scheduled", "running", "window", "paused", "late", "finished", "cancelled"]
    reason: str | None = Field(description="Why it is paused, if it is")
    total: int
    released: int = Field(description="Recipients whose jobs exist")
    counts: dict[str, int] = Field(
        description="Recipients by job state; pending = not released yet"
    )
    parked: int
    deliveries: int = Field(description="Connectus deliveries (v1 bulks, v3 chunks) so far")
    segments: int
    deliver_at_ms: int
    window: str | None
    timezone: str
    started_ms: int | None
    finished_ms: int | None
    rate_per_s: float | None
    eta_s: float | None


class CampaignControl:
    """Pause, resume, cancel, status and report, on a :class:`CampaignStore`.

    ``tenant``: only that tenant's campaigns exist for it (another's is
    :class:`CampaignNotFound`); None, an operator's view of every campaign
    (``connectus campaign list`` without ``--tenant``).
    """

    def __init__(self, store: CampaignStore, *, tenant: str | None = DEFAULT_TENANT) -> None:
        self.store = store
        self.tenant = tenant

    def get(self, campaign_id: str) -> Campaign:
        campaign = self.store.get(campaign_id)
        if campaign is None or (self.tenant is not None and campaign.tenant != self.tenant):
            raise CampaignNotFound(campaign_id)
        return campaign

    def pause(self, campaign_id: str) -> Control:
        return self._move(campaign_id, S.PAUSED, PAUSABLE, paused_reason="paused by an operator")

    def resume(self, campaign_id: str) -> Control:
        """Back to running (the pump moves it to ``window`` if the window is closed),
        or to scheduled when paused before its ``deliver_at``."""
        campaign = self.get(campaign_id)
        if campaign.state is S.PAUSED and campaign.started_ms is None:
            return self._move(campaign_id, S.SCHEDULED, RESUMABLE, paused_reason="")
        started = {} if campaign.started_ms else {"started_at": self.store.clock()}
        return self._move(campaign_id, S.RUNNING, RESUMABLE, paused_reason="", **started)

    def cancel(self, campaign_id: str) -> Control:
        allowed = set(CampaignState) - TERMINAL
        return self._move(campaign_id, S.CANCELLED, allowed, cancelled_at=self.store.clock())

    def status(self, campaign_id: str) -> CampaignStatus:
        campaign = self.get(campaign_id)
        return CampaignStatus(
            campaign=campaign,
            counts=self.store.counts(campaign_id),
            parked=self.store.parked(campaign_id),
            deliveries=len(self.store.deliveries(campaign_id)),
            now_ms=self.store.clock(),
        )

    def short_links(self, campaign_id: str) -> tuple[ShortLinkRef, ...]:
        """The campaign's shortened ``{link:...}`` URLs (empty before the worker shortened
        them, or without links): see :mod:`campaign.links`."""
        raw = self.store.client.hget(self.store.keys.campaign(campaign_id), "short_links")
        return load_links(raw.decode() if isinstance(raw, bytes) else raw)

    def report_rows(self, campaign_id: str) -> Iterator[dict[str, str]]:
        """One row per recipient, in list order (unreleased ones: pending or cancelled)."""
        campaign = self.get(campaign_id)
        unreleased = "cancelled" if campaign.state is S.CANCELLED else "pending"
        made = self.store.chunks_made(campaign_id)
        for number in range(campaign.chunks):
            rows = self.store.chunk(campaign_id, number)
            base = number * campaign.chunk_size
            ids = [job_id_for(campaign_id, base + i) for i in range(len(rows))]
            released = number < campaign.cursor
            records = self.store.jobs_state(ids) if released else iter(())
            # Released with no record: a v1 bulk chunk not claimed yet, or expired.
            missing = (pending_state(campaign, made, number) or "expired") if released else None
            for offset, row in enumerate(rows):
                record = next(records, {}) if released else {}
                out = {column: record.get(column, "") for column in REPORT_COLUMNS}
                out.update(
                    index=str(base + offset),
                    recipient=row[0],
                    state=record.get("state") or missing or unreleased,
                    error=record.get("last_error", ""),
                    attempts=record.get("attempts", "0"),
                )
                yield out

    def write_report(self, campaign_id: str, out: IO[str]) -> int:
        """Write the CSV report; returns the number of recipient rows."""
        writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        count = 0
        for row in self.report_rows(campaign_id):
            writer.writerow(row)
            count += 1
        return count

    def _move(
        self, campaign_id: str, to: CampaignState, allowed: frozenset[CampaignState] | set[Any],
        **fields: str | int,
    ) -> Control:  # fmt: skip
        if self.tenant is not None:
            self.get(campaign_id)  # another tenant's: CampaignNotFound (its tenant never changes)
        result = self.store.transition(campaign_id, to, allowed_from=allowed, fields=fields)
        if result.status == "refused":
            if result.state == "":
                raise CampaignNotFound(campaign_id)
            raise CampaignStateError(
                f"campaign {campaign_id} is {result.state}: can't move it to {to.value}"
            )
        return result
