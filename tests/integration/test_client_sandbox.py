"""The real client against the sandbox over loopback HTTP (httpx's own transport).

Each case must end in the class of the error tree (retry, reconcile,
permanent) that the worker decides by, with what the sandbox charged.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectus_worker.domain.models import Kind
from connectus_worker.worker.connectus import errors
from connectus_worker.worker.connectus.balances import BalanceLookup
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.enums import Country, SubclientProduct
from sandbox.config import FaultConfig, SandboxConfig
from sandbox.server import SandboxServer


def connect(server: SandboxServer, read_timeout_s: float = 5.0) -> ConnectusClient:
    return ConnectusClient(
        api_user="sandbox",
        api_key="sandbox-key",
        base_url=server.base_url,
        v1_base_url=server.base_url,
        qr_base_url=server.base_url,
        connect_timeout_s=2.0,
        read_timeout_s=read_timeout_s,
    )


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    faults = getattr(request, "param", FaultConfig())
    with SandboxServer(SandboxConfig(faults=faults)) as server:
        yield server


def charges(server: SandboxServer) -> int:
    total: int = httpx.get(f"{server.base_url}/_sandbox/ledger").json()["total"]
    return total


def test_sends_lookups_and_a_refusal(sandbox: SandboxServer) -> None:
    with connect(sandbox) as client:
        sent = [
            client.v3.send_sms(dst_number="56987688060", sms_content=f"hola {i}") for i in range(5)
        ]
        account = client.v3.account()
        with pytest.raises(errors.InvalidNumber):
            client.v3.send_sms(dst_number="12", sms_content="hola")
    assert len(set(sent)) == 5
    assert account.id_account == "sandbox"  # the API user the sandbox was started with
    assert charges(sandbox) == 5


@pytest.mark.parametrize("sandbox", [FaultConfig(drop_rate=1.0)], indirect=True)
def test_a_dropped_answer_is_ambiguous_and_was_charged(sandbox: SandboxServer) -> None:
    with connect(sandbox) as client, pytest.raises(errors.ConnectionDropped) as caught:
        client.v3.send_sms(dst_number="56987688060", sms_content="hola")
    assert caught.value.reason == "remote_protocol_error"
    assert charges(sandbox) == 1  # why it must be reconciled, never resent blindly


@pytest.mark.parametrize("sandbox", [FaultConfig(rate_429=1.0, retry_after_s=3)], indirect=True)
def test_429_is_rate_limited_with_its_retry_after(sandbox: SandboxServer) -> None:
    with connect(sandbox) as client, pytest.raises(errors.RateLimited) as caught:
        client.v3.send_sms(dst_number="56987688060", sms_content="hola")
    assert caught.value.retry_after_s == 3
    assert charges(sandbox) == 0


@pytest.mark.parametrize("sandbox", [FaultConfig(latency_ms=1500)], indirect=True)
def test_a_slow_answer_is_a_response_timeout(sandbox: SandboxServer) -> None:
    client = connect(sandbox, read_timeout_s=0.3)
    with client, pytest.raises(errors.ResponseTimeout) as caught:
        client.v3.send_sms(dst_number="56987688060", sms_content="hola")
    assert caught.value.reason == "read_timeout"


def test_a_subclient_sms_balance_is_read_per_country_from_the_sandbox() -> None:
    with SandboxServer() as server:
        client = connect(server)
        try:
            sub = client.v3.create_client(name="balances")
            assert sub.id_unique is not None
            client.v3.add_balance(id_client=sub.id_unique, amount=7,
                                  product=SubclientProduct.SMS, id_country=Country.CHILE)  # fmt: skip
            client.v3.add_balance(id_client=sub.id_unique, amount=3,
                                  product=SubclientProduct.EMAIL)  # fmt: skip
            lookup = BalanceLookup(client)
            assert lookup(Kind.SMS, sub.id_unique, int(Country.CHILE)).available == 7
            assert lookup(Kind.SMS, sub.id_unique, int(Country.PERU)).available == 0
            assert lookup(Kind.EMAIL, sub.id_unique, None).available == 3
        finally:
            client.close()
