# ruff: noqa: F401, F811 (the fixtures of tests/support/bulk.py are imported and used by name)
"""A v1 bulk chunk and the scoped breaker: held back only by a scope that covers it
(the account, host:v1, product:sms, Chile's SMS balance), and a probe it took is
given back when the chunk ends without an outcome."""

from __future__ import annotations

import fakeredis
import httpx

from connectus_worker.campaign.model import CampaignState as S
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.breaker_scopes import V1_BULK, target_for
from connectus_worker.worker.connectus import errors as e
from tests.support.bulk import (
    all_sent,
    bulk_sender,
    campaigns,
    client,
    clock,
    jobs,
    released,
)
from tests.support.clock import Clock


def _breaker(redis: fakeredis.FakeRedis, clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(redis, prefix="t", account="acct", failure_threshold=2,
                          open_ms=10_000, clock=clock)  # fmt: skip


def test_a_chunk_waits_for_chile_s_sms_balance_not_for_other_scopes(
    campaigns: CampaignStore,
    jobs: JobStore,
    clock: Clock,
    client: fakeredis.FakeRedis,
    released: str,
) -> None:
    breaker = _breaker(client, clock)
    mexico = target_for(Kind.SMS, {"dst_number": "525512345678"})
    qr = target_for(Kind.WHATSAPP_QR, {"number": "56987654321"})
    exhausted = e.BalanceExhausted("no", reason="http_402")
    breaker.record_failure(exhausted, breaker.allow(V1_BULK))  # balance:sms:CL
    sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
    sender.breaker = breaker
    assert sender.handle(released, 0) == "deferred" and recorder.requests == []

    breaker.close("balance:sms:CL")
    breaker.record_failure(exhausted, breaker.allow(mexico))  # balance:sms:MX
    for _ in range(2):
        breaker.record_failure(e.ServiceUnavailable("x", reason="http_503"), breaker.allow(qr))
    assert {s["scope"] for s in breaker.status()["scopes"]} == {"balance:sms:MX", "host:qr"}
    assert sender.handle(released, 0) == "sent:5" and len(recorder.requests) == 1


def test_a_probe_that_ends_without_an_outcome_is_given_back(
    campaigns: CampaignStore,
    jobs: JobStore,
    clock: Clock,
    client: fakeredis.FakeRedis,
    released: str,
) -> None:
    breaker = _breaker(client, clock)
    for _ in range(2):
        breaker.record_failure(e.ServiceUnavailable("x", reason="http_503"), breaker.allow(V1_BULK))
    clock.now_ms += 10_000
    sender, recorder = bulk_sender(campaigns, jobs, clock, httpx.Response(200, json={}))
    sender.breaker = breaker
    # The campaign is paused: the chunk is parked, with no call and no outcome.
    assert campaigns.transition(released, S.PAUSED, allowed_from={S.RUNNING}).status == "ok"
    assert sender.handle(released, 0) == "parked:parked"
    [scope] = breaker.status()["scopes"]
    assert (scope["scope"], scope["state"], scope["probes_in_flight"]) == (
        "host:v1",
        "half_open",
        0,
    )
    assert recorder.requests == []
