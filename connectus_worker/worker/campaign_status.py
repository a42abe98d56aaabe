"""Delivery statuses of campaign messages that no webhook reported in time.

The SMS status webhook (by provider id) may be lost or not configured, so the
housekeeper also polls the chunks of recent campaigns whose messages were sent more
than ``CAMPAIGN_STATUS_POLL_AFTER_S`` ago without a final status, at most once per
that period per chunk: a v1 bulk chunk by ``check_delivery_status`` of its Connectus
deliveries; a v3 SMS chunk by its own delivery's ``delivery_info``, else ``GET /sms/:id``
per message, at most ``per_pass`` calls a pass (polling must not compete with sending).
A chunk whose statuses are all final (or never sent) is not polled again. E-mail and
WhatsApp chunks are handed once to the status-watch set (:mod:`worker.channel_status`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from connectus_worker.campaign.model import Campaign, CampaignState, Transport
from connectus_worker.campaign.store import CampaignStore, job_id_for
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.delivery_status import DeliveryStatuses, is_final
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.ledger.status_watch import WATCHED_KINDS, watch
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError

log = structlog.get_logger("connectus_worker.worker.campaign_status")

#: Campaigns considered per pass: the newest ones (finished ones still get statuses).
RECENT = 20
_POLLED = (CampaignState.RUNNING, CampaignState.FINISHED, CampaignState.WINDOW,
           CampaignState.PAUSED)  # fmt: skip
#: Job states that may still get a delivery status.
_OPEN = ("sent", "queued", "sending", "retrying", "unknown")


class StatusPoller:
    def __init__(
        self,
        *,
        campaigns: CampaignStore,
        jobs: JobStore,
        client: ConnectusClient | Mapping[str, ConnectusClient],
        after_s: int,
        per_pass: int = 200,
        clock: Callable[[], int] = epoch_ms,
    ) -> None:
        self.campaigns = campaigns
        self.jobs = jobs
        self.clients = ByAccount.of_one(client)  # a campaign's own account's listings
        self.after_ms = after_s * 1000
        self.per_pass = per_pass
        self.clock = clock
        self.statuses = DeliveryStatuses(jobs.client, jobs.keys)

    def run_once(self) -> int:
        """One pass; returns how many statuses were recorded."""
        recorded = 0
        budget = self.per_pass
        for campaign in self.campaigns.recent(limit=RECENT):
            if campaign.state not in _POLLED:
                continue
            if campaign.transport is Transport.V1_BULK:
                recorded += self._poll_bulk(campaign)
            elif campaign.kind in WATCHED_KINDS:
                self._watch_released(campaign)
            elif campaign.kind is Kind.SMS and budget > 0:  # SMS's own status calls (_poll_v3)
                got, used = self._poll_v3(campaign, budget)
                recorded, budget = recorded + got, budget - used
        return recorded

    def _due(self, marks: dict[str, int], chunk: int, sent_ms: int | None) -> bool:
        now = self.clock()
        if f"{chunk}:done" in marks or sent_ms is None or now - sent_ms < self.after_ms:
            return False
        return now - marks.get(f"{chunk}:polled", 0) >= self.after_ms

    def _poll_bulk(self, campaign: Campaign) -> int:
        cid = campaign.campaign_id
        marks = self.campaigns.poll_marks(cid)
        recorded = 0
        for chunk, id_delivery in sorted(self.campaigns.deliveries(cid).items()):
            if not self._due(marks, chunk, marks.get(f"{chunk}:at")):
                continue
            final = True
            # A chunk sent as several calls (query-string size) has one delivery each.
            for one in id_delivery.split(","):
                try:
                    answer = self.clients.of(campaign.account).v1.check_delivery_status(
                        id_delivery=one
                    )
                except ConnectusError as exc:
                    _failed(exc, campaign=cid, chunk=chunk)
                    return recorded
                for message in answer.messages:
                    job_id = self.jobs.job_for_provider_id(message.provider_id or "")
                    if job_id is not None:
                        recorded += self.statuses.record(job_id, message.status, self.clock())
                    final = final and is_final(message.status)
            self.campaigns.mark_polled(cid, chunk, done=final)
        return recorded

    def _watch_released(self, campaign: Campaign) -> None:
        """Hand each released chunk's jobs, once, to the status-watch set."""
        marks = self.campaigns.poll_marks(campaign.campaign_id)
        for chunk in range(campaign.cursor):
            if f"{chunk}:done" not in marks:
                watch(self.jobs.client, self.jobs.keys, _job_ids(campaign, chunk), self.clock())
                self.campaigns.mark_polled(campaign.campaign_id, chunk, done=True)

    def _poll_v3(self, campaign: Campaign, budget: int) -> tuple[int, int]:
        """(statuses recorded, calls made) of one v3 SMS campaign, in at most ``budget`` calls."""
        cid = campaign.campaign_id
        marks = self.campaigns.poll_marks(cid)
        # A chunk in a Connectus delivery of its own (worker.campaign_deliveries):
        # one delivery_info gives its members' statuses.
        deliveries = self.campaigns.deliveries(cid) if campaign.connectus_delivery else {}
        recorded = used = 0
        for chunk in range(campaign.cursor):
            if used >= budget:
                break
            ids = _job_ids(campaign, chunk)
            records = list(self.campaigns.jobs_state(ids))
            sent = [int(r["sent_at"]) for r in records if r.get("sent_at")]
            if not self._due(marks, chunk, max(sent) if sent else None):
                continue
            open_ = [(job_id, r) for job_id, r in zip(ids, records, strict=True)
                     if r.get("state") in _OPEN
                     and not is_final(r.get("delivery_status"))]  # fmt: skip
            listed: dict[str, str] = {}
            if chunk in deliveries and any(r.get("provider_id") for _, r in open_):
                used += 1
                try:
                    info = self.clients.of(campaign.account).v3.sms_delivery_info(
                        id_delivery=deliveries[chunk]
                    )
                except ConnectusError as exc:
                    _failed(exc, campaign=cid, chunk=chunk)
                    return recorded, used
                listed = {m.id: m.platform_status for m in info.messages
                          if m.id and m.platform_status}  # fmt: skip
            for job_id, record in open_:
                provider_id = record.get("provider_id")
                if record.get("state") != "sent" or not provider_id:
                    continue
                status = listed.get(provider_id)
                if status is None:
                    if used >= budget:
                        break
                    used += 1
                    try:
                        sms = self.clients.of(campaign.account).v3.get_sms(id_sms=provider_id)
                    except ConnectusError as exc:
                        _failed(exc, campaign=cid, job_id=job_id)
                        return recorded, used
                    status = sms.platform_status
                if status:
                    recorded += self.statuses.record(job_id, status, self.clock())
            done = all(r.get("state") in ("failed", "cancelled") for _, r in open_)
            self.campaigns.mark_polled(cid, chunk, done=done or not open_)
        return recorded, used


def _job_ids(campaign: Campaign, chunk: int) -> list[str]:
    base = chunk * campaign.chunk_size
    return [job_id_for(campaign.campaign_id, base + i) for i in range(campaign.chunk_rows(chunk))]


def _failed(exc: ConnectusError, **where: str | int) -> None:
    log.warning("campaign.status_poll_failed", error=type(exc).__name__, **where)
