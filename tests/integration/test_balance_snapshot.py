"""The HTTP service's campaign preflight checks the balances the workers publish.

The snapshot writer reads the sandbox over loopback HTTP and writes the real
Redis; the service (real HTTP, no Connectus credentials) reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from connectus_worker.campaign.model import Transport
from connectus_worker.config import Settings, load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.keys import Keys
from connectus_worker.worker.balance_snapshot import (
    BalanceSnapshotWriter,
    SnapshotBalanceLookup,
    snapshot_key,
)
from connectus_worker.worker.connectus.client import ConnectusClient
from devtools.service_server import ServiceServer
from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer
from tests.support.clock import Clock

TOKEN = "snapshot-test-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "wa-1"}
CAMPAIGN = {"name": "Promo WA", "kind": "whatsapp", "text": "Hola {name}", "src": "56999944837",
            "recipients": [{"dst_number": f"5698765432{i}", "name": f"C{i}"} for i in range(3)]}  # fmt: skip


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    # redis_client: its fixture deletes every key under the prefix afterwards.
    return load_settings({"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix,
                          "INTAKE_TOKENS": TOKEN, "WEBHOOK_SECRET": "snapshot-hook-0123456789abcdef",
                          "BALANCE_SNAPSHOT_INTERVAL_S": "60"})  # fmt: skip


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(whatsapp_balance=2)) as server:
        yield server


def test_a_whatsapp_campaign_over_the_published_balance_is_refused_unless_forced(
    settings: Settings, sandbox: SandboxServer, redis_client: redis.Redis
) -> None:
    api = ConnectusClient(api_user="sandbox", api_key="sandbox-key", base_url=sandbox.base_url,
                          v1_base_url=sandbox.base_url, qr_base_url=sandbox.base_url,
                          connect_timeout_s=2.0, read_timeout_s=5.0)  # fmt: skip
    keys = Keys(settings.key_prefix)
    with api:
        writer = BalanceSnapshotWriter(client=api, redis_client=redis_client, keys=keys,
                                       interval_s=60)  # fmt: skip
        assert writer.run_once() is True
        assert writer.run_once() is False  # once per interval, whoever asks
    with ServiceServer(settings) as server, httpx.Client(base_url=server.base_url) as http:
        refused = http.post("/v1/campaigns", json=CAMPAIGN, headers=BEARER)
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["plan"]["balances"] == [{
            "source": "account's unassigned WhatsApp balance (free_whatsapp_balance)",
            "available": 2}]  # fmt: skip
        assert "cost 3 exceeds" in problem["refusals"][0]
        forced = http.post("/v1/campaigns", json={**CAMPAIGN, "force": True},
                           headers={**BEARER, "Idempotency-Key": "wa-2"})  # fmt: skip
        assert forced.status_code == 202, forced.text
    assert int(redis_client.hget(snapshot_key(keys), "email") or 0) > 0  # GET /email/balance


def test_a_stale_snapshot_checks_nothing(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    clients = (
        '{"data": {"free_sms_balance_by_country": [], "free_whatsapp_balance": 0, "clients": []}}'
    )
    redis_client.hset(snapshot_key(keys), mapping={"at": 1_000_000, "clients": clients})
    clock = Clock(now_ms=1_000_000 + 179_000)
    lookup = SnapshotBalanceLookup(redis_client, keys, max_age_s=180, clock=clock)
    assert lookup(Kind.WHATSAPP, None, None, Transport.V3).available == 0
    clock.now_ms += 2_000  # older than max_age_s: unknown, never a stale refusal
    assert lookup(Kind.WHATSAPP, None, None, Transport.V3).available is None
