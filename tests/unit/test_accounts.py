"""Several Connectus accounts: the settings, the account of a job (one validation for
every door), the worker's routing by account, and the webhook routes of each account."""

from __future__ import annotations

import functools
from typing import Any

import fakeredis
import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from connectus_worker.campaign.model import Transport
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import ConfigError, load_settings
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaigns import CampaignProducer
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.actors import register_actors
from connectus_worker.worker.balance_snapshot import SnapshotBalanceLookup, snapshot_key
from connectus_worker.worker.campaign_messages import single_message
from tests.support.service import SECRET, SMS, invalid_params, problem, service

B_SECRET = "hook-brand-b-0123456789"
TWO = {
    "CONNECTUS_ACCOUNTS": "brand_a,brand_b",
    "CONNECTUS_BRAND_A_API_USER": "user-a",
    "CONNECTUS_BRAND_A_API_KEY": "key-a-secret",
    "CONNECTUS_BRAND_B_API_USER": "user-b",
    "CONNECTUS_BRAND_B_API_KEY": "key-b-secret",
    "CONNECTUS_BRAND_B_BASE_URL": "https://b.example.test",
    "CONNECTUS_BRAND_B_RATE_SMS_PER_S": "5",
}


def test_named_accounts_read_their_prefixed_variables_and_inherit_the_rest() -> None:
    settings = load_settings({**TWO, "RATE_SMS_PER_S": "40"}, require_keys=False)
    a, b = settings.account("brand_a"), settings.account("brand_b")
    assert settings.account_names == ("brand_a", "brand_b")
    assert (a.api_user, a.base_url, a.rate_sms_per_s) == (
        "user-a", "https://plataforma.connectus.la", 40.0)  # fmt: skip
    assert (b.base_url, b.rate_sms_per_s, b.rate_otp_per_s) == ("https://b.example.test", 5.0, 20.0)
    assert settings.require_connectus_credentials() == ("user-a", "key-a-secret")
    # A key never shows in a repr.
    assert "key-b-secret" not in repr(b) and "key-b-secret" not in repr(settings)


def test_without_accounts_the_single_account_variables_are_the_default_account() -> None:
    settings = load_settings({"CONNECTUS_API_USER": "u", "CONNECTUS_API_KEY": "k"})
    assert settings.account_names == ("default",)
    assert settings.account("default").credentials() == ("u", "k")
    assert settings.account_for("any-tenant") == "default"


@pytest.mark.parametrize(
    ("env", "variable", "reason"),
    [
        ({"CONNECTUS_ACCOUNTS": "a,b,a"}, "CONNECTUS_ACCOUNTS", "'a' is named twice"),
        ({"CONNECTUS_ACCOUNTS": "v1"}, "CONNECTUS_ACCOUNTS", "CONNECTUS_V1_BASE_URL is another"),
        ({"CONNECTUS_ACCOUNTS": "a", "CONNECTUS_B_API_KEY": "x"}, "CONNECTUS_B_API_KEY",
         "names no account"),
        ({"CONNECTUS_ACCOUNTS": "a", "CONNECTUS_A_BASE_URL": "ftp://x"}, "CONNECTUS_A_BASE_URL",
         "http"),
        ({"CONNECTUS_ACCOUNTS": "a", "CONNECTUS_A_RATE_SMS_BURST": "0"},
         "CONNECTUS_A_RATE_SMS_BURST", "greater than 0"),
        ({"CONNECTUS_ACCOUNTS": "default,a", "CONNECTUS_API_USER": "same",
          "CONNECTUS_A_API_USER": "same"}, "CONNECTUS_A_API_USER", "API user of account"),
        ({"CONNECTUS_ACCOUNTS": "a", "TENANT_ACCOUNTS": "acme:a|zz"}, "TENANT_ACCOUNTS", "'zz'"),
    ],
)  # fmt: skip
def test_a_bad_account_setting_fails_at_start_up_naming_the_variable(
    env: dict[str, str], variable: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, require_keys=False)
    assert caught.value.variable == variable and reason in caught.value.reason


def test_a_worker_needs_every_accounts_key() -> None:
    env = {k: v for k, v in TWO.items() if k != "CONNECTUS_BRAND_B_API_KEY"}
    with pytest.raises(ConfigError) as caught:
        load_settings(env, require_keys=False).require_connectus_credentials()
    assert caught.value.variable == "CONNECTUS_BRAND_B_API_KEY"


def producer(tenant: str = "default", **env: str) -> Producer:
    settings = load_settings({**TWO, **env}, require_keys=False)
    return Producer(settings, tenant=tenant, redis_client=fakeredis.FakeRedis())


def queued_job(p: Producer, job_id: str) -> dict[str, Any]:
    [raw] = p.redis.hvals(p.store.keys.queue_messages("transactional"))
    job: dict[str, Any] = Message.decode(raw).kwargs["job"]
    assert job["job_id"] == job_id
    return job


def test_a_job_is_sent_by_the_account_it_names_else_its_tenants_else_the_first() -> None:
    p = producer("someone", TENANT_ACCOUNTS="acme:brand_b")
    named = p.send_sms("+56 9 8765 4321", "hola", account="brand_b")
    assert p.get_status(named).account == "brand_b"
    assert queued_job(p, named)["account"] == "brand_b"
    other = producer("acme", TENANT_ACCOUNTS="acme:brand_b")
    assert other.get_status(other.send_sms("+56 9 8765 4321", "x")).account == "brand_b"
    first = producer("someone")
    assert first.get_status(first.send_sms("+56 9 8765 4321", "x")).account == "brand_a"


def test_an_account_the_tenant_may_not_use_is_a_field_error() -> None:
    p = producer("acme", TENANT_ACCOUNTS="acme:brand_b")
    for account in ("brand_a", "nope", 3):
        with pytest.raises(InvalidInput) as caught:
            p.send_sms("+56 9 8765 4321", "hola", account=account)
        [error] = caught.value.errors
        assert error.field == "account" and "brand_a" not in error.reason


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_intake_refuses_an_unknown_account_naming_the_field() -> None:
    env = {"CONNECTUS_ACCOUNTS": "default,brand_b", "CONNECTUS_BRAND_B_WEBHOOK_SECRET": B_SECRET}
    async with service(**env) as svc:
        bad = invalid_params(await svc.send({**SMS, "account": "brand_c"}))
        good = await svc.send({**SMS, "account": "brand_b"})
        assert good.status_code == 202
        assert svc.store.get(good.json()["job_id"]).account == "brand_b"  # type: ignore[union-attr]
    assert set(bad) == {"account"}


@pytest.mark.anyio
async def test_each_accounts_webhook_routes_open_with_its_own_secret_only() -> None:
    env = {"CONNECTUS_ACCOUNTS": "default,brand_b", "CONNECTUS_BRAND_B_WEBHOOK_SECRET": B_SECRET}
    body = {"id_sms": "x-1", "status": "ENTREGADO"}
    async with service(**env) as svc:
        post = svc.client.post
        own = await post("/webhooks/brand_b/sms-status", params={"token": B_SECRET}, json=body)
        other = await post("/webhooks/brand_b/sms-status", params={"token": SECRET}, json=body)
        crossed = await post("/webhooks/sms-status", params={"token": B_SECRET}, json=body)
        legacy = await post("/webhooks/sms-status", params={"token": SECRET}, json=body)
        incoming = await post("/webhooks/brand_b/sms-incoming", params={"token": B_SECRET},
                              json={"id_sms": "in-9", "dst_number": "4374",
                                    "src_number": "+56 9 8765 4321", "sms_content": "Hola"})  # fmt: skip
        unknown = await post("/webhooks/brand_c/sms-status", params={"token": B_SECRET}, json=body)
        metrics = (await svc.client.get("/metrics")).text
    assert own.status_code == 200 and legacy.status_code == 200 and incoming.status_code == 200
    problem(other, 401)
    problem(crossed, 401)
    problem(unknown, 404)
    assert 'account="brand_b",kind="sms_status"' in metrics


def test_the_service_needs_each_accounts_webhook_secret() -> None:
    settings = load_settings(
        {"INTAKE_TOKENS": "tok-0123456789abcdef", "WEBHOOK_SECRET": SECRET,
         "CONNECTUS_ACCOUNTS": "default,brand_b"}
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        settings.require_service_settings()
    assert caught.value.variable == "CONNECTUS_BRAND_B_WEBHOOK_SECRET"


class Recording:
    """Stands in for one account's send pipeline: records the jobs it was handed."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.store = self  # its job store: where a malformed job is dead-lettered
        self.jobs: list[str] = []
        self.quarantined: list[str] = []

    def handle(self, kind: Any, job: dict[str, Any]) -> str:
        self.jobs.append(job["job_id"])
        return "sent"

    def quarantine(self, data: bytes, reason: str) -> str:
        self.quarantined.append(reason)
        return "quarantined"


def test_the_worker_routes_each_job_to_its_accounts_pipeline() -> None:
    settings = load_settings(TWO, require_keys=False)
    a, b = Recording("brand_a"), Recording("brand_b")
    actors = register_actors(StubBroker(), ByAccount({"brand_a": a, "brand_b": b}), settings)  # type: ignore[arg-type]
    send = actors[next(iter(actors))].fn
    kind = next(iter(actors)).value
    job = {"job_id": "j", "kind": kind, "key": "k", "queue": "q", "payload": {}}
    send(job={**job, "job_id": "to-b", "account": "brand_b"})
    send(job={**job, "job_id": "to-first"})  # queued before accounts existed
    send(job={**job, "job_id": "elsewhere", "account": "brand_c"})
    send(job={**job, "job_id": "garbled", "account": {"x": 1}})
    assert (a.jobs, b.jobs) == (["to-first"], ["to-b"])
    assert a.quarantined == [
        "malformed job: job.account 'brand_c' is not in this worker's CONNECTUS_ACCOUNTS",
        "malformed job: job.account: must be a string (a name of CONNECTUS_ACCOUNTS)",
    ]


def test_a_campaign_names_its_account_and_its_jobs_carry_it() -> None:
    settings = load_settings({**TWO, "TENANT_ACCOUNTS": "acme:brand_b"}, require_keys=False)
    redis_client = fakeredis.FakeRedis()
    acme = CampaignProducer(settings, tenant="acme", redis_client=redis_client)
    rows = [{"dst_number": "+56 9 8765 4321", "name": "Ana"}]
    accepted = acme.send(
        rows, CampaignOptions(name="c", text="Hola {name}", transport=Transport.V3)
    )
    campaign = acme.get(accepted.campaign_id)
    assert campaign is not None and campaign.account == "brand_b"
    assert single_message(campaign, "j-0", {}, "bulk", 0).kwargs["job"]["account"] == "brand_b"
    with pytest.raises(InvalidInput) as caught:
        acme.send(rows, CampaignOptions(name="c", text="Hola", account="brand_a"))
    assert [e.field for e in caught.value.errors] == ["account"]


def test_a_campaigns_preflight_reads_its_own_accounts_balance_snapshot() -> None:
    settings = load_settings(TWO, require_keys=False)
    redis_client, keys = fakeredis.FakeRedis(), Keys(settings.key_prefix)
    now = 1_000_000
    redis_client.hset(snapshot_key(keys, "brand_a"), mapping={"at": now, "v1_sms": 1000})
    redis_client.hset(snapshot_key(keys, "brand_b"), mapping={"at": now, "v1_sms": 0})
    lookup = functools.partial(
        SnapshotBalanceLookup, redis_client, keys, max_age_s=60, clock=lambda: now
    )
    producer = CampaignProducer(settings, redis_client=redis_client, balance=lookup)
    rows = [{"dst_number": "+56 9 8765 4321", "name": "Ana"}]
    ok = producer.preflight(rows, CampaignOptions(name="c", text="Hola", account="brand_a"))
    short = producer.preflight(rows, CampaignOptions(name="c", text="Hola", account="brand_b"))
    assert ok.refusals == [] and [b.available for b in ok.balances] == [1000]
    assert [b.available for b in short.balances] == [0] and short.refusals
