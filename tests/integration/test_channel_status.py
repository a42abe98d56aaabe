"""E-mail and WhatsApp delivery statuses and e-mail events, polled at the sandbox.

The end-to-end case runs real worker processes against the sandbox over HTTP
and the real Redis; the bounds (one lookup per job per interval, a stop at a
final status or at the maximum age) are checked on the poller itself, with
jobs sent to the sandbox and recorded as the worker records them, and a clock
moved by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import Settings, load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaign_control import CampaignControl
from connectus_worker.producers.campaigns import CampaignProducer
from connectus_worker.worker.channel_status import ChannelStatusPoller
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.metrics import WorkerMetrics
from devtools.stack import LocalStack
from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer
from tests.support.clock import Clock
from tests.support.waiting import wait_for

SRC_EMAIL = "contacto@empresa.cl"
WA_SRC = "56999944837"
CHILE = "56987654321"


def job_hash(client: redis.Redis, keys: Keys, job_id: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in client.hgetall(keys.job(job_id)).items()}


def stream(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    return [dict(fields) for _, fields in client.xrange(f"{keys.prefix}:events")]


def test_single_and_campaign_jobs_get_statuses_and_events_from_real_workers(
    make_stack: Callable[..., LocalStack], redis_client: redis.Redis
) -> None:
    stack = make_stack(sandbox_flags={"email_open_rate": 1.0, "email_click_rate": 1.0},
                       env={"STATUS_POLL_INTERVAL_S": "1"})  # fmt: skip
    producer = Producer(stack.settings)
    keys = producer.store.keys
    email = producer.send_email("ana@example.com", "Hola", "<p>Hola</p>", src_email=SRC_EMAIL)
    whatsapp = producer.send_whatsapp(CHILE, "Hola WA", src_number=WA_SRC)
    campaigns = CampaignProducer(stack.settings)
    rows = [{"dst_email": f"cliente{i}@example.com", "name": f"C{i}"} for i in range(3)]
    options = CampaignOptions(name="Boletín", text="<p>Hola {name}</p>", kind=Kind.EMAIL,
                              subject="Novedades", src=SRC_EMAIL)  # fmt: skip
    campaign_id = campaigns.send(rows, options).campaign_id
    control = CampaignControl(campaigns.store)

    def report() -> list[dict[str, str]]:
        return list(control.report_rows(campaign_id))

    def settled() -> bool:
        mail, wa = job_hash(redis_client, keys, email), job_hash(redis_client, keys, whatsapp)
        return (mail.get("delivery_status") == "ENTREGADO" and "email_clicked_at" in mail
                and wa.get("delivery_status") == "ENTREGADO"
                and all(r["delivery_status"] == "ENTREGADO" and r["email_clicked_at"]
                        for r in report()))  # fmt: skip

    wait_for(settled, timeout_s=40, what="e-mails clicked and WhatsApp delivered")
    assert all(r["email_opened_at"] for r in report())  # the campaign report's columns
    mail = job_hash(redis_client, keys, email)
    assert mail["email_opened_at"] and mail["email_clicked_at"]
    entries = stream(redis_client, keys)
    statuses = {(e["job_id"], e["channel"], e["status"]) for e in entries
                if e["kind"] == "delivery_status"}  # fmt: skip
    assert (email, "email", "ENTREGADO") in statuses
    assert (whatsapp, "whatsapp", "ENTREGADO") in statuses
    events = sorted(e["event"] for e in entries
                    if e["kind"] == "email_event" and e["job_id"] == email)  # fmt: skip
    assert events == ["ABIERTO", "CLICKEADO"]  # each once, however often it was polled
    # Both final: polling stopped (nothing left in the watch set).
    wait_for(lambda: redis_client.zcard(keys.status_watch) == 0, timeout_s=10, what="watch empty")


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    # Delivered and opened, never clicked: an e-mail is then polled until the age limit.
    with SandboxServer(SandboxConfig(email_open_rate=1.0, email_click_rate=0.0)) as server:
        yield server


@pytest.fixture
def settings(redis_url: str, redis_prefix: str) -> Settings:
    return load_settings({"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix})


def send_and_record(producer: Producer, api: ConnectusClient, kind: Kind) -> tuple[str, str]:
    """Queue a job, send it to the sandbox and record it sent, as the worker does."""
    if kind is Kind.EMAIL:
        job_id = producer.send_email("eva@example.com", "Hola", "<p>x</p>", src_email=SRC_EMAIL)
        provider_id = api.v3.send_email(dst_email="eva@example.com", src_email=SRC_EMAIL,
                                        subject="Hola", email_content="<p>x</p>").provider_id  # fmt: skip
    else:
        job_id = producer.send_whatsapp(CHILE, "Hola", src_number=WA_SRC)
        provider_id = api.v3.send_whatsapp(src_number=WA_SRC, dst_number=CHILE,
                                           whatsapp_content="Hola").provider_id  # fmt: skip
    assert provider_id
    store: JobStore = producer.store
    claim = store.claim(job_id, worker_id="test", lease_ms=10_000)
    assert claim.status == "ok"
    fields = {"state": "sent", "provider_id": provider_id, "sent_at": store.clock()}
    assert store.finish(Finish(job_id, claim.fence, "done", fields))
    return job_id, provider_id


def test_polling_is_one_lookup_per_job_per_interval_and_stops(
    sandbox: SandboxServer, settings: Settings, redis_client: redis.Redis
) -> None:
    producer = Producer(settings)
    api = ConnectusClient(api_user="sandbox", api_key="sandbox-key", base_url=sandbox.base_url,
                          v1_base_url=sandbox.base_url, qr_base_url=sandbox.base_url,
                          connect_timeout_s=2.0, read_timeout_s=5.0)  # fmt: skip
    clock = Clock()
    metrics = WorkerMetrics()
    poller = ChannelStatusPoller(jobs=producer.store, client=api, interval_s=60, max_age_s=600,
                                 events_maxlen=1000, clock=clock, metrics=metrics)  # fmt: skip
    with api:
        email, email_id = send_and_record(producer, api, Kind.EMAIL)
        whatsapp, wa_id = send_and_record(producer, api, Kind.WHATSAPP)
        keys = producer.store.keys
        clock.now_ms = max(
            int(job_hash(redis_client, keys, j)["sent_at"]) for j in (email, whatsapp)
        )
        wait_for(lambda: bool(api.v3.get_email(id_email=email_id).events)
                 and api.v3.whatsapp_status(message_id=wa_id).status == "ENTREGADO",
                 timeout_s=10, what="e-mail opened, WhatsApp delivered at the sandbox")  # fmt: skip
        assert poller.run_once() == 2  # one lookup each
        assert poller.run_once() == 0  # the same interval: none
        assert job_hash(redis_client, keys, whatsapp)["delivery_status"] == "ENTREGADO"
        mail = job_hash(redis_client, keys, email)
        assert mail["delivery_status"] == "ENTREGADO" and mail["email_opened_at"]
        # WhatsApp final: dropped; the e-mail waits for a click, polled each interval.
        assert redis_client.zrange(keys.status_watch, 0, -1) == [email]
        clock.now_ms += 60_000
        assert poller.run_once() == 1
        # Past the maximum age: dropped without a lookup.
        clock.now_ms += 600_000
        assert poller.run_once() == 0
        assert redis_client.zcard(keys.status_watch) == 0
    opened = [e for e in stream(redis_client, keys) if e["kind"] == "email_event"]
    assert [e["event"] for e in opened] == ["ABIERTO"]  # recorded once over two lookups
    sample = metrics.registry.get_sample_value
    assert sample("connectus_worker_email_events_total", {"event": "ABIERTO"}) == 1
    assert sample("connectus_worker_status_lookups_total",
                  {"kind": "email", "result": "too_old"}) == 1  # fmt: skip
    assert sample("connectus_worker_delivery_statuses_total",
                  {"kind": "whatsapp", "status": "ENTREGADO"}) == 1  # fmt: skip


def test_a_pass_stops_taking_jobs_after_its_time_budget(
    sandbox: SandboxServer, settings: Settings, redis_client: redis.Redis
) -> None:
    producer = Producer(settings)
    jobs = [producer.send_whatsapp(CHILE, f"Hola {i}", src_number=WA_SRC) for i in range(25)]
    created = [int(job_hash(redis_client, producer.store.keys, j)["created_at"]) for j in jobs]
    clock = Clock(now_ms=max(created))
    ticks = iter([0.0, 0.0, 5.0])  # started, the first check, then past the 1 s budget
    api = ConnectusClient(api_user="sandbox", api_key="sandbox-key", base_url=sandbox.base_url,
                          v1_base_url=sandbox.base_url, qr_base_url=sandbox.base_url,
                          connect_timeout_s=2.0, read_timeout_s=5.0)  # fmt: skip
    with api:
        poller = ChannelStatusPoller(jobs=producer.store, client=api, interval_s=60,
                                     max_age_s=600, events_maxlen=1000, clock=clock,
                                     monotonic=lambda: next(ticks))  # fmt: skip
        assert poller.run_once() == 0  # none sent yet: no lookup
    key = producer.store.keys.status_watch
    later = redis_client.zcount(key, clock.now_ms + 1, "+inf")
    still_due = redis_client.zcount(key, "-inf", clock.now_ms)
    assert (later, still_due) == (20, 5)  # one batch taken; the rest wait for the next tick
