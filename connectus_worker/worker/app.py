"""Assemble a worker: broker, job store, Connectus clients, send paths, actors, housekeeper.

The one place where settings become objects; tests may inject the HTTP transport and
the Redis client.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

import httpx
import redis
from dramatiq.brokers.redis import RedisBroker

import connectus_worker.tracing as tracing
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.config import Settings
from connectus_worker.durability import Durability
from connectus_worker.ledger.delivery_status import PendingStatuses
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.redis import connect
from connectus_worker.transport.broker import build_broker
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.actors import register_actors, register_bulk_actor
from connectus_worker.worker.balance_snapshot import BalanceSnapshotWriter
from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.bulk import BulkSender
from connectus_worker.worker.campaign_deliveries import delivery_opener
from connectus_worker.worker.campaign_messages import ChunkRecovery, recipient_message
from connectus_worker.worker.campaign_status import StatusPoller
from connectus_worker.worker.campaigns import CampaignPump
from connectus_worker.worker.channel_status import ChannelStatusPoller
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.short_links import short_link_of
from connectus_worker.worker.housekeeping import Housekeeper
from connectus_worker.worker.metrics import WorkerMetrics
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.qr_session import QrSessionWatch
from connectus_worker.worker.ratelimit import RateLimiter
from connectus_worker.worker.reconcile import Reconciler
from connectus_worker.worker.senders import ClientSender


@dataclass
class WorkerApp:
    """A built worker: its broker (actors declared), its housekeeper (not started)."""

    broker: RedisBroker
    housekeeper: Housekeeper
    clients: ByAccount[ConnectusClient]

    def close(self) -> None:
        self.housekeeper.stop()
        for client in self.clients.values():
            client.close()
        self.broker.close()


def build_client(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    account: str | None = None,
) -> ConnectusClient:
    """One client per process and account (None: the first), from the settings."""
    settings.require_connectus_credentials()
    own = settings.account(account or settings.account_names[0])
    user, key = own.credentials()
    return ConnectusClient(
        api_user=user,
        api_key=key,
        base_url=own.base_url,
        v1_base_url=own.v1_base_url,
        qr_base_url=own.whatsapp_qr_url,
        connect_timeout_s=settings.connectus_connect_timeout_s,
        read_timeout_s=settings.connectus_read_timeout_s,
        write_timeout_s=settings.connectus_write_timeout_s,
        deadline_s=settings.connectus_request_deadline_s,
        max_response_bytes=settings.connectus_max_response_bytes,
        max_listing_bytes=settings.connectus_max_listing_bytes,
        transport=transport,
        on_client=tracing.instrument_http_client,
    )


def lease_ms(settings: Settings) -> int:
    """How long a send may hold its lease (ms): every in-process attempt may
    take a full connect + write + read timeout plus the longest backoff, plus
    ``LEASE_MARGIN_S`` (s) for the rest (rate-limit wait, Redis round trips)."""
    per_attempt_s = (
        settings.connectus_connect_timeout_s
        + settings.connectus_write_timeout_s
        + settings.connectus_read_timeout_s
    )
    backoff_s = settings.retry_max_backoff_ms / 1000
    worst_s = settings.retry_attempts * (per_attempt_s + backoff_s)
    return int((worst_s + settings.lease_margin_s) * 1000)


def build_worker_app(
    settings: Settings,
    *,
    redis_client: redis.Redis | None = None,
    transport: httpx.BaseTransport | None = None,
) -> WorkerApp:
    client_redis = redis_client or connect(settings)
    broker = build_broker(settings, client=client_redis)
    store = JobStore(client_redis, Keys(settings.key_prefix), ttl_s=settings.job_ttl_s,
                     durability=Durability.from_settings(settings))  # fmt: skip
    metrics = WorkerMetrics()
    campaigns = CampaignStore(client_redis, store.keys, ttl_s=settings.campaign_ttl_s,
                              job_ttl_s=settings.job_ttl_s,
                              recipient_key=settings.content_key)  # fmt: skip
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    policy = RetryPolicy(
        max_retries=settings.durable_max_retries,
        min_backoff_ms=settings.durable_min_backoff_ms,
        max_backoff_ms=settings.durable_max_backoff_ms,
        max_message_age_s=settings.max_message_age_s,
        otp_max_age_s=settings.otp_max_age_s,
    )
    lease = lease_ms(settings)
    names = settings.account_names
    # Per Connectus account (worker.accounts): its client, limiter, breaker and send paths.
    clients = ByAccount({n: build_client(settings, transport=transport, account=n) for n in names})
    limiters = ByAccount({n: RateLimiter.from_settings(settings, client_redis, n) for n in names})
    # A 200 ms local view of a closed breaker: no round trip per send while all is
    # well; an opened breaker reaches every process within 200 ms.
    breakers = ByAccount({
        n: CircuitBreaker.from_settings(settings, client_redis, n, cache_ms=200) for n in names
    })  # fmt: skip
    pipelines = ByAccount({
        n: SendPipeline(store=store, policy=policy, worker_id=worker_id, lease_ms=lease,
                        send=ClientSender(clients[n], settings, limiter=limiters[n],
                                          metrics=metrics),
                        breaker=breakers[n], limiter=limiters[n], metrics=metrics,
                        acquire_timeout_s=settings.rate_acquire_timeout_s,
                        park=campaigns.park, content_key=settings.content_key)
        for n in names
    })  # fmt: skip
    bulks = ByAccount({
        n: BulkSender(campaigns=campaigns, jobs=store, client=clients[n], policy=policy,
                      queue=settings.queue_bulk, worker_id=worker_id, lease_ms=lease,
                      breaker=breakers[n], limiter=limiters[n],
                      acquire_timeout_s=settings.rate_acquire_timeout_s)
        for n in names
    })  # fmt: skip
    register_actors(broker, pipelines, settings, metrics)
    register_bulk_actor(broker, bulks, settings)
    # Every actor is declared: a message naming another one goes to the dead
    # letters (dlq list), not to Dramatiq's .XQ (transport.broker).
    broker.dead_letter_unknown_actors = True
    opener = delivery_opener(clients, settings.campaign_delivery_lead_s)
    pump = CampaignPump(store=campaigns, queue=settings.queue_bulk,
                        max_pending=settings.campaign_max_pending, owner=worker_id,
                        # With the campaign's account, whose clicks report reads them.
                        shorten=lambda url, account: short_link_of(clients.of(account), url),
                        open_delivery=opener)  # fmt: skip
    reconciler = Reconciler(
        store=store,
        client=clients,
        after_s=settings.reconcile_after_s,
        window_s=settings.reconcile_window_s,
        undecidable=settings.reconcile_undecidable,
        timezone=settings.default_timezone,
        rebuild=lambda job_id: recipient_message(campaigns, job_id, settings.queue_bulk),
        content_key=settings.content_key,
    )
    status = StatusPoller(campaigns=campaigns, jobs=store, client=clients,
                          after_s=settings.campaign_status_poll_after_s)  # fmt: skip
    channels = ChannelStatusPoller(jobs=store, client=clients,
                                   interval_s=settings.status_poll_interval_s,
                                   max_age_s=settings.status_poll_max_age_s,
                                   events_maxlen=settings.events_stream_maxlen,
                                   metrics=metrics)  # fmt: skip
    snapshots = [
        BalanceSnapshotWriter(client=clients[n], redis_client=client_redis, keys=store.keys,
                              interval_s=settings.balance_snapshot_interval_s, account=n)
        for n in names
    ]  # fmt: skip
    qr_sessions = [
        QrSessionWatch(client=clients[n], breaker=breakers[n], redis_client=client_redis,
                       prefix=settings.key_prefix, interval_s=settings.qr_status_interval_s,
                       account=n)
        for n in names
    ]  # fmt: skip
    housekeeper = Housekeeper(
        store=store,
        broker=broker,
        queues=settings.queues,
        promote_interval_s=settings.housekeeping_interval_s,
        maintenance_interval_s=settings.broker_maintenance_interval_s,
        reconciler=reconciler,
        reconcile_interval_s=settings.reconcile_interval_s,
        ticks=[pump.tick, *(watch.tick for watch in qr_sessions)],
        # Each snapshot runs itself once per its own interval.
        polls=[status.run_once, channels.run_once, *(s.run_once for s in snapshots)],
        pending_statuses=PendingStatuses(client_redis, store.keys),
        chunk_recovery=ChunkRecovery(client_redis, store.keys, queue=settings.queue_bulk),
    )
    return WorkerApp(broker, housekeeper, clients)
