"""The campaign pump: starts campaigns on time, keeps their send windows, releases chunks.

Every worker's housekeeper calls :meth:`CampaignPump.tick` about twice a second; one
process at a time (a short per-campaign lease; the release script's compare-and-set
makes a second one harmless) moves each active campaign one step. Chunks are released
lazily from the stored list while fewer than ``CAMPAIGN_MAX_PENDING`` recipients are
pending: Redis stays small, and a paused or cancelled campaign has few jobs to stop.
The states and why a release is safe: docs/campaigns.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from connectus_worker.campaign.links import LINK, dump, shorten_all
from connectus_worker.campaign.model import Campaign, CampaignState, Transport
from connectus_worker.campaign.render import masked, payload_for
from connectus_worker.campaign.store import CampaignStore, ReleasedJob, job_id_for
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.worker.campaign_messages import chunk_message, single_message

log = structlog.get_logger("connectus_worker.worker.campaigns")

#: A recipient in one of these has no outcome yet; ``unknown`` ones are being
#: reconciled (or wait in review) and may still be sent, so they hold "finished".
PENDING_STATES = ("queued", "sending", "retrying", "unknown")


class CampaignPump:
    """Moves every active campaign one step per :meth:`tick`."""

    def __init__(
        self,
        *,
        store: CampaignStore,
        queue: str,
        max_pending: int,
        owner: str,
        clock: Callable[[], int] = epoch_ms,
        lock_ms: int = 5_000,
        shorten: Callable[[str, str | None], tuple[str, str]] | None = None,
        open_delivery: Callable[[Campaign, int], str] | None = None,
    ) -> None:
        """``shorten(url, account) -> (short_link, id)``: ``POST /api_v3/short_link`` at the
        campaign's account (:mod:`campaign.links`); None: a campaign with link tokens waits.
        ``open_delivery(campaign, chunk) -> id_delivery`` (:mod:`worker.campaign_deliveries`);
        None: chunks are sent without one."""
        self.store = store
        self.queue = queue
        self.max_pending = max_pending
        self.owner = owner
        self.clock = clock
        self.lock_ms = lock_ms
        self.shorten = shorten
        self.open_delivery = open_delivery

    def tick(self) -> int:
        """One pass over the active campaigns; returns how many chunks were released."""
        released = 0
        for campaign_id in self.store.active_ids():
            if not self.store.try_pump_lock(campaign_id, self.owner, ttl_ms=self.lock_ms):
                continue
            campaign = self.store.get(campaign_id)
            if campaign is None:
                # The record expired: nothing to do, ever.
                self.store.client.srem(self.store.keys.active_campaigns, campaign_id)
                continue
            released += self.step(campaign)
        return released

    def step(self, campaign: Campaign) -> int:
        """Move one campaign one step; returns chunks released. A campaign that starts
        (or whose window opens) releases in the same step, not one tick later."""
        now = self.clock()
        if LINK.search(campaign.text):
            shortened = self._shorten_links(campaign)
            if shortened is None:
                return 0  # not shortened yet: nothing may be rendered with raw tokens
            campaign = shortened
        if campaign.state is CampaignState.SCHEDULED:
            campaign = self._start(campaign, now)
        if (
            campaign.state is CampaignState.WINDOW
            and self._window_open(campaign, now)
            and self._move(
                campaign, CampaignState.RUNNING, {CampaignState.WINDOW}, paused_reason=""
            )
        ):
            campaign = replace(campaign, state=CampaignState.RUNNING, paused_reason=None)
        if campaign.state is CampaignState.RUNNING:
            if not self._window_open(campaign, now):
                self._move(campaign, CampaignState.WINDOW, {CampaignState.RUNNING},
                           paused_reason="outside its send window")  # fmt: skip
                return 0
            return self._release(campaign, now)
        return 0

    def _shorten_links(self, campaign: Campaign) -> Campaign | None:
        """Shorten the ``{link:...}`` URLs once and store the rewritten text and links;
        None (try again next tick) if that failed. A crash between the calls and the
        write costs one unused short link, never a recipient without one."""
        if self.shorten is None:
            log.warning("campaign.links_not_shortened", campaign=campaign.campaign_id,
                        reason="no Connectus client in this process")  # fmt: skip
            return None
        try:
            shorten, account = self.shorten, campaign.account
            text, refs = shorten_all(campaign.text, lambda url: shorten(url, account))
        except Exception as exc:  # a Connectus error or a bad answer: retried next tick
            log.warning("campaign.short_link_failed", campaign=campaign.campaign_id,
                        error=type(exc).__name__)  # fmt: skip
            return None
        self.store.client.hset(self.store.keys.campaign(campaign.campaign_id),
                               mapping={"text": text, "short_links": dump(refs)})  # fmt: skip
        log.info("campaign.links_shortened", campaign=campaign.campaign_id, links=len(refs))
        return replace(campaign, text=text)

    def _start(self, campaign: Campaign, now: int) -> Campaign:
        """The campaign as this step leaves it (started, late or still scheduled)."""
        if now < campaign.deliver_at_ms:
            return campaign
        late_ms = now - campaign.deliver_at_ms
        if campaign.max_lateness_s and late_ms > campaign.max_lateness_s * 1000:
            reason = (f"could not start within {campaign.max_lateness_s} s of deliver_at "
                      f"(late by {late_ms // 1000} s): waiting for 'campaign resume'")  # fmt: skip
            self._move(campaign, CampaignState.LATE, {CampaignState.SCHEDULED},
                       paused_reason=reason)  # fmt: skip
            return campaign
        target = CampaignState.RUNNING if self._window_open(campaign, now) else CampaignState.WINDOW
        if not self._move(campaign, target, {CampaignState.SCHEDULED}, started_at=now):
            return campaign  # moved by someone else meanwhile (cancel, pause): next tick
        return replace(campaign, state=target, started_ms=now)

    def _release(self, campaign: Campaign, now: int) -> int:
        counts = self.store.counts(campaign.campaign_id)
        pending = sum(counts.get(s, 0) for s in PENDING_STATES)
        limit = max(self.max_pending, campaign.chunk_size)
        released = 0
        # A v1 bulk chunk is released without its rows (its claim reads them).
        bulk = campaign.transport is Transport.V1_BULK
        while campaign.cursor < campaign.chunks and pending + campaign.chunk_size <= limit:
            rows = None if bulk else self.store.chunk(campaign.campaign_id, campaign.cursor)
            count = self._release_chunk(campaign, rows)
            if count is None:
                return released  # lost the race: another process released it
            pending += count
            released += 1
            campaign = replace(campaign, cursor=campaign.cursor + 1)
        if campaign.cursor >= campaign.chunks and pending == 0:
            self._move(campaign, CampaignState.FINISHED, {CampaignState.RUNNING}, finished_at=now)
        return released

    def _release_chunk(self, campaign: Campaign, rows: list[list[str]] | None) -> int | None:
        """Release chunk ``campaign.cursor``; its row count, or None if it lost the race."""
        number = campaign.cursor
        if rows is None:
            # v1 bulk: one message for the chunk; its claim makes the records (release_bulk).
            message = chunk_message(self.queue, campaign.campaign_id, number)
            if not self.store.release_bulk(campaign, queue=self.queue, chunk_message=message):
                return None
        elif not self._release_jobs(campaign, rows):
            return None
        count = campaign.chunk_rows(number) if rows is None else len(rows)
        log.info("campaign.chunk_released", campaign=campaign.campaign_id, chunk=number,
                 recipients=count)  # fmt: skip
        return count

    def _release_jobs(self, campaign: Campaign, rows: list[list[str]]) -> bool:
        """Release a chunk with a job and a message per row (v3 sends)."""
        number = campaign.cursor
        now = self.clock()
        # A number may have answered STOP since the campaign was accepted.
        phones = campaign.kind.spec.phone
        opted_out = self.store.opted_out([r[0] for r in rows]) if phones else [False] * len(rows)
        id_delivery = self._delivery(campaign, number)
        jobs = []
        for offset, (row, out) in enumerate(zip(rows, opted_out, strict=True)):
            index = number * campaign.chunk_size + offset
            job_id = job_id_for(campaign.campaign_id, index)
            payload, units = payload_for(campaign, row)
            if id_delivery:
                payload["id_delivery"] = id_delivery
            message = single_message(campaign, job_id, payload, self.queue, now)
            key = f"campaign:{campaign.campaign_id}:{index}"
            jobs.append(ReleasedJob(job_id, key, masked(campaign, row[0]), units, message, out,
                                    dst=row[0]))  # fmt: skip
        if not self.store.release(campaign, jobs, queue=self.queue):
            return False  # lost the race: the delivery stays empty (nothing charged)
        if id_delivery:
            self.store.set_delivery(campaign.campaign_id, number, id_delivery)
        return True

    def _delivery(self, campaign: Campaign, chunk: int) -> str | None:
        """The chunk's Connectus delivery, when the campaign asks for one; None if it
        doesn't or creating it failed (the chunk is then sent without: its lookups
        read date_report, as any v3 send's)."""
        if not campaign.connectus_delivery or self.open_delivery is None:
            return None
        try:
            return self.open_delivery(campaign, chunk)
        except Exception as exc:  # a Connectus error or a bad answer: send without
            log.warning("campaign.delivery_failed", campaign=campaign.campaign_id, chunk=chunk,
                        error=type(exc).__name__)  # fmt: skip
            return None

    def _window_open(self, campaign: Campaign, now: int) -> bool:
        if campaign.window is None:
            return True
        local = datetime.fromtimestamp(now / 1000, tz=UTC).astimezone(campaign.zone)
        return campaign.window.is_open(local)

    def _move(
        self,
        campaign: Campaign,
        to: CampaignState,
        allowed: set[CampaignState],
        **fields: str | int,
    ) -> bool:
        result = self.store.transition(
            campaign.campaign_id, to, allowed_from=allowed, fields=fields or None
        )
        if result.status == "ok":
            log.info("campaign.state", campaign=campaign.campaign_id, state=to.value,
                     previous=result.state, **fields)  # fmt: skip
        return result.status == "ok"
