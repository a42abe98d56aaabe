"""Assemble a worker: broker, job store, Connectus client, pipeline, actors.

The one place where settings become objects. The worker process, the
integration tests and the benchmarks all call :func:`build_worker_app`;
tests may inject the HTTP transport and the Redis client.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import dramatiq
import httpx
import redis
from dramatiq.brokers.redis import RedisBroker

import connectus_worker.tracing as tracing
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.config import Settings
from connectus_worker.domain.models import Kind
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
from connectus_worker.worker.campaign_messages import recipient_message
from connectus_worker.worker.campaign_status import StatusPoller
from connectus_worker.worker.campaigns import CampaignPump
from connectus_worker.worker.channel_status import ChannelStatusPoller
from connectus_worker.worker.chunk_recovery import ChunkRecovery
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.short_links import short_link_of
from connectus_worker.worker.housekeeping import Housekeeper
from connectus_worker.worker.id_lookup import IdLookup
from connectus_worker.worker.metrics import WorkerMetrics
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.qr_session import QrSessionWatch, qr_session_recheck_ms
from connectus_worker.worker.ratelimit import RateLimiter
from connectus_worker.worker.reconcile import Reconciler
from connectus_worker.worker.senders import ClientSender


@dataclass
class WorkerApp:
    settings: Settings
    redis: redis.Redis
    broker: RedisBroker
    store: JobStore
    client: ConnectusClient
    pipeline: SendPipeline
    actors: dict[Kind, dramatiq.Actor[..., Any]]
    housekeeper: Housekeeper
    metrics: WorkerMetrics
    campaigns: CampaignStore
    bulk: BulkSender
    # Per Connectus account (CONNECTUS_ACCOUNTS); the fields above are the first's.
    accounts: ByAccount[AccountParts]

    def close(self) -> None:
        self.housekeeper.stop()
        for parts in self.accounts.values():
            parts.client.close()
        self.broker.close()


@dataclass(frozen=True)
class AccountParts:
    """What one Connectus account sends with (worker.accounts)."""

    client: ConnectusClient
    limiter: RateLimiter
    breaker: CircuitBreaker
    pipeline: SendPipeline
    bulk: BulkSender


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

    def parts_of(account: str) -> AccountParts:
        """One account's client, limiter, breaker and send paths (its own Redis keys)."""
        client = build_client(settings, transport=transport, account=account)
        limiter = RateLimiter.from_settings(settings, client_redis, account)
        # A 200 ms local view of a closed breaker: no round trip per send while
        # all is well; an opened breaker reaches every process within 200 ms.
        breaker = CircuitBreaker.from_settings(
            settings, client_redis, account, cache_ms=200,
            recheck_ms=qr_session_recheck_ms(settings),
        )  # fmt: skip
        pipeline = SendPipeline(
            store=store,
            send=ClientSender(client, settings, limiter=limiter, metrics=metrics),
            breaker=breaker,
            limiter=limiter,
            acquire_timeout_s=settings.rate_acquire_timeout_s,
            policy=policy,
            worker_id=worker_id,
            lease_ms=lease_ms(settings),
            metrics=metrics,
            park=campaigns.park,
            content_key=settings.content_key,
        )
        bulk = BulkSender(campaigns=campaigns, jobs=store, client=client, policy=policy,
                          queue=settings.queue_bulk, worker_id=worker_id,
                          lease_ms=lease_ms(settings), breaker=breaker, limiter=limiter,
                          acquire_timeout_s=settings.rate_acquire_timeout_s)  # fmt: skip
        return AccountParts(client, limiter, breaker, pipeline, bulk)

    accounts = ByAccount({name: parts_of(name) for name in settings.account_names})
    first = accounts.first
    clients = ByAccount({name: parts.client for name, parts in accounts.items()})
    actors = register_actors(
        broker, ByAccount({n: p.pipeline for n, p in accounts.items()}), settings, metrics
    )
    register_bulk_actor(broker, ByAccount({n: p.bulk for n, p in accounts.items()}), settings)
    # Every actor is declared: a message naming another one goes to the dead
    # letters (dlq list), not to Dramatiq's .XQ (transport.broker).
    broker.dead_letter_unknown_actors = True
    client = first.client
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
        id_lookup=IdLookup(
            store=store,
            after_s=settings.reconcile_after_s,
            window_s=settings.reconcile_window_s,
            content_key=settings.content_key,
        ),
    )
    housekeeper = Housekeeper(
        store=store,
        broker=broker,
        queues=settings.queues,
        promote_interval_s=settings.housekeeping_interval_s,
        maintenance_interval_s=settings.broker_maintenance_interval_s,
        reconciler=reconciler,
        reconcile_interval_s=settings.reconcile_interval_s,
        pump=pump,
        status_poller=StatusPoller(
            campaigns=campaigns,
            jobs=store,
            client=clients,
            after_s=settings.campaign_status_poll_after_s,
        ),
        channel_status=ChannelStatusPoller(
            jobs=store,
            client=clients,
            interval_s=settings.status_poll_interval_s,
            max_age_s=settings.status_poll_max_age_s,
            events_maxlen=settings.events_stream_maxlen,
            metrics=metrics,
        ),
        balance_snapshots=[
            BalanceSnapshotWriter(
                client=parts.client,
                redis_client=client_redis,
                keys=store.keys,
                interval_s=settings.balance_snapshot_interval_s,
                account=name,
            )
            for name, parts in accounts.items()
        ],
        pending_statuses=PendingStatuses(client_redis, store.keys),
        chunk_recovery=ChunkRecovery(client_redis, store.keys, queue=settings.queue_bulk),
        qr_sessions=[
            QrSessionWatch(
                client=parts.client,
                breaker=parts.breaker,
                redis_client=client_redis,
                prefix=settings.key_prefix,
                interval_s=settings.qr_status_interval_s,
                account=name,
            )
            for name, parts in accounts.items()
        ],
    )
    return WorkerApp(
        settings, client_redis, broker, store, client, first.pipeline, actors, housekeeper,
        metrics, campaigns, first.bulk, accounts,
    )  # fmt: skip
