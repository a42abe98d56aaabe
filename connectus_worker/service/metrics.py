"""Prometheus metrics of the service, in a registry of its own per app (several apps in
one process never collide). Label values are bounded: routes are templates, never an id;
platform statuses outside the known list become ``other``; campaigns: at most
``CAMPAIGN_METRICS_LIMIT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import redis
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from connectus_worker.campaign.model import Campaign, CampaignState
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.ledger.delivery_status import STATUS_RANK
from connectus_worker.producers.campaign_control import CampaignStatus
from connectus_worker.redis import text

log = structlog.get_logger("connectus_worker.service.metrics")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "connectus_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "connectus_http_request_duration_seconds",
            "Time to answer an HTTP request, in seconds, by route template.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "connectus_webhook_events_total",
            "Webhook events from Connectus, by kind (sms_status, sms_incoming), platform "
            "status, result (recorded, duplicate, unmatched: no job for the id_sms) and the "
            "Connectus account whose route received it.",
            ["kind", "status", "result", "account"],
            registry=self.registry,
        )
        self.opt_outs = Counter(
            "connectus_opt_outs_total",
            "Numbers newly opted out of marketing by an incoming keyword SMS.",
            registry=self.registry,
        )
        self.opt_ins = Counter(
            "connectus_opt_ins_total",
            "Numbers opted back in to marketing by an incoming keyword SMS (ALTA, START).",
            registry=self.registry,
        )
        self.opt_out_refusals = Counter(
            "connectus_opt_out_refusals_total",
            "Marketing (bulk) sends refused at the intake because the number opted out.",
            registry=self.registry,
        )

    def webhook_event(self, kind: str, status: str, result: str, account: str = "default") -> None:
        # Connectus's platform statuses are the only label values (the rest: other).
        label = status if status in STATUS_RANK or status == "-" else "other"
        self.webhook_events.labels(kind=kind, status=label, result=result, account=account).inc()

    def watch_campaigns(self, store: CampaignStore) -> None:
        """Export campaign progress from ``store`` (read at each scrape)."""
        self.registry.register(CampaignCollector(store))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (reads Redis: call it off the loop)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


#: Most campaigns exported at once (each is 8 recipient series + 7 state series + 1 info).
CAMPAIGN_METRICS_LIMIT = 50
#: Recipient states always exported for each campaign (zeros included, so a
#: dashboard's series do not appear and vanish). ``pending``: not released yet
#: (no job exists); the others are job states. A job state outside this list
#: (none exists for campaign jobs today) is exported under its own name.
CAMPAIGN_RECIPIENT_STATES = ("pending", "queued", "sending", "retrying", "sent", "failed",
                             "unknown", "cancelled")  # fmt: skip


class CampaignCollector(Collector):
    """``connectus_campaign_*`` gauges, read at scrape time (at most four round trips):
    the unfinished campaigns newest first, then the most recent others, ``limit`` in all,
    with the numbers of ``GET /v1/campaigns/{id}``. On a Redis error only
    ``connectus_campaign_redis_up 0``: a scrape never fails because Redis does.
    """

    def __init__(self, store: CampaignStore, *, limit: int = CAMPAIGN_METRICS_LIMIT) -> None:
        self.store = store
        self.limit = limit

    def describe(self) -> Iterator[Metric]:
        # Nothing to declare: else the registry would collect (read Redis) to learn the names.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "connectus_campaign_redis_up",
            "1 if Redis answered the scrape's campaign query, else 0.",
        )
        recipients = GaugeMetricFamily(
            "connectus_campaign_recipients",
            "Recipients of a campaign by state: pending (not released yet) or its job's state. "
            f"Unfinished campaigns and the most recent others, at most {CAMPAIGN_METRICS_LIMIT}.",
            labels=["campaign", "state"],
        )
        state = GaugeMetricFamily(
            "connectus_campaign_state",
            "1 for the campaign's current state (scheduled, running, window, paused, late, "
            "finished, cancelled), 0 for the others.",
            labels=["campaign", "state"],
        )
        info = GaugeMetricFamily(
            "connectus_campaign_info",
            "Always 1: a campaign's name, kind and transport, to join on 'campaign'.",
            labels=["campaign", "name", "kind", "transport"],
        )  # fmt: skip
        try:
            statuses = self._read()
        except redis.RedisError as exc:
            log.warning("metrics.campaigns_unavailable", error=f"{type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for status in statuses:
            campaign = status.campaign
            labels = [campaign.campaign_id]
            counts: dict[str, int] = status.to_json()["counts"]
            others = sorted(counts.keys() - set(CAMPAIGN_RECIPIENT_STATES))
            for name in (*CAMPAIGN_RECIPIENT_STATES, *others):
                recipients.add_metric([*labels, name], counts.get(name, 0))
            for value in CampaignState:
                state.add_metric([*labels, value.value], 1 if campaign.state is value else 0)
            info.add_metric(
                [*labels, campaign.name, campaign.kind.value, campaign.transport.value], 1
            )
        yield from (up, recipients, state, info)

    def _read(self) -> list[CampaignStatus]:
        store, keys = self.store, self.store.keys
        active = store.active_ids()
        recent = cast(
            "list[tuple[bytes, float]]",
            store.client.zrevrange(keys.campaigns, 0, self.limit - 1, withscores=True),
        )
        created = {text(member): float(score) for member, score in recent}
        unscored = [i for i in active if i not in created]
        if unscored:
            scores = store.client.zmscore(keys.campaigns, unscored)
            created.update(zip(unscored, (s or 0.0 for s in scores), strict=True))
        newest = sorted(active, key=lambda i: -created.get(i, 0.0))
        unfinished = set(active)
        ids = (newest + [i for i in created if i not in unfinished])[: self.limit]
        pipe = store.client.pipeline(transaction=False)
        for campaign_id in ids:
            pipe.hgetall(keys.campaign(campaign_id))
            pipe.hgetall(keys.campaign_counts(campaign_id))
        answers = pipe.execute()
        now_ms = store.clock()
        statuses: list[CampaignStatus] = []
        for campaign_id, raw, raw_counts in zip(ids, answers[::2], answers[1::2], strict=True):
            if not raw:
                continue  # expired between the two reads
            try:
                campaign = Campaign.from_redis(raw)
            except (KeyError, ValueError) as exc:
                log.warning("metrics.campaign_unreadable", campaign_id=campaign_id, error=str(exc))
                continue
            counts = {text(k): int(v) for k, v in raw_counts.items()}
            statuses.append(
                CampaignStatus(campaign, {k: n for k, n in counts.items() if n}, 0, 0, now_ms)
            )
        return statuses
