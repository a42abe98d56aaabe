"""Idempotency-Key over HTTP: replay, 422 on a different body, 409 while in flight."""

from __future__ import annotations

import asyncio
import threading

import pytest

from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from tests.support.service import (
    BEARER,
    NUMBER,
    OTHER_TOKEN,
    SMS,
    invalid_params,
    problem,
    service,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_same_key_same_body_replays_the_first_answer() -> None:
    async with service() as svc:
        first = await svc.send(SMS, **{"Idempotency-Key": "order-1"})
        # Same JSON, different formatting and key order: the same request.
        again = await svc.client.post(
            "/v1/messages",
            content=b'{"sms_content":"hola",  "dst_number":"+56 9 8765 4321","type":"sms"}',
            headers={**BEARER, "Idempotency-Key": "order-1", "Content-Type": "application/json"},
        )
        jobs = svc.redis.keys(f"{svc.settings.key_prefix}:job:*")
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert len(jobs) == 1


async def test_same_key_different_body_is_422_and_changes_nothing() -> None:
    async with service() as svc:
        first = await svc.send(SMS, **{"Idempotency-Key": "order-2"})
        other = await svc.send({**SMS, "sms_content": "chao"}, **{"Idempotency-Key": "order-2"})
        jobs = svc.redis.keys(f"{svc.settings.key_prefix}:job:*")
    assert first.status_code == 202
    assert invalid_params(other) == {"Idempotency-Key": "was already used with a different body"}
    assert len(jobs) == 1


async def test_a_request_while_the_first_is_in_flight_is_409() -> None:
    async with service() as svc:
        # Another replica holds the in-flight marker for this key right now.
        marker = Keys(svc.settings.key_prefix).http_lock(DEFAULT_TENANT, "order-3")
        svc.redis.set(marker, "someone-else", px=30_000)
        busy = await svc.send(SMS, **{"Idempotency-Key": "order-3"})
        assert svc.redis.get(marker) == b"someone-else"  # not ours to release
        svc.redis.delete(marker)  # that request ended without an answer (e.g. 5xx)
        after = await svc.send(SMS, **{"Idempotency-Key": "order-3"})
    assert "still in progress" in problem(busy, 409)["detail"]
    assert after.status_code == 202


async def test_concurrent_requests_with_one_key_one_wins_one_gets_409() -> None:
    entered = threading.Event()
    release = threading.Event()
    async with service() as svc:
        real_submit = Producer.submit
        producer: Producer = svc.app.state.producer

        def slow_submit(*args: object, **kwargs: object) -> str:
            entered.set()
            assert release.wait(10), "never released"
            return real_submit(producer, *args, **kwargs)  # type: ignore[arg-type]

        producer.submit = slow_submit  # type: ignore[method-assign]
        first = asyncio.create_task(svc.send(SMS, **{"Idempotency-Key": "order-4"}))
        assert await asyncio.to_thread(entered.wait, 10)  # the first holds the marker now
        second = await svc.send(SMS, **{"Idempotency-Key": "order-4"})
        release.set()
        first_response = await first
        third = await svc.send(SMS, **{"Idempotency-Key": "order-4"})
    assert first_response.status_code == 202
    problem(second, 409)
    assert third.headers["idempotent-replayed"] == "true"
    assert third.content == first_response.content


async def test_errors_are_not_stored_so_a_corrected_retry_succeeds() -> None:
    async with service() as svc:
        bad = await svc.send({**SMS, "dst_number": "123"}, **{"Idempotency-Key": "order-5"})
        # Not a mismatch: the failed attempt left nothing behind under the key.
        good = await svc.send(SMS, **{"Idempotency-Key": "order-5"})
        leftovers = svc.redis.keys(f"{svc.settings.key_prefix}:http-idem:*:lock")
    assert "dst_number" in invalid_params(bad)
    assert good.status_code == 202 and "idempotent-replayed" not in good.headers
    assert leftovers == []


async def test_a_tenants_tokens_share_its_keys() -> None:
    # TOKEN and OTHER_TOKEN are both INTAKE_TOKENS: the default tenant's. Keys are
    # the tenant's, not the token's, so a rotated-in token replays the old one's answer.
    async with service() as svc:
        mine = await svc.send(SMS, **{"Idempotency-Key": "order-6"})
        theirs = await svc.client.post(
            "/v1/messages",
            json=SMS,
            headers={"Authorization": f"Bearer {OTHER_TOKEN}", "Idempotency-Key": "order-6"},
        )
    assert theirs.headers["idempotent-replayed"] == "true"
    assert theirs.json()["job_id"] == mine.json()["job_id"]


async def test_http_key_and_producer_key_agree() -> None:
    async with service() as svc:
        response = await svc.send(SMS, **{"Idempotency-Key": "order-7"})
        producer: Producer = svc.app.state.producer
        same = producer.send_sms(NUMBER, "hola", idempotency_key="order-7")
        record = svc.store.get(same)
        conflict = await svc.client.post(
            "/v1/messages",
            json={**SMS, "sms_content": "distinto"},
            headers={"Authorization": f"Bearer {OTHER_TOKEN}", "Idempotency-Key": "order-7"},
        )
    assert same == response.json()["job_id"]
    assert record is not None and record.idempotency_key == "order-7"
    # The tenant's other client reusing the key for another message: the stored
    # answer's body differs (the job-level conflict is the same 422).
    assert "Idempotency-Key" in invalid_params(conflict)


@pytest.mark.parametrize("key", ["has space", "x" * 201, "ñandú"])
async def test_malformed_keys_are_422(key: str) -> None:
    async with service() as svc:
        response = await svc.client.post(
            "/v1/messages",
            json=SMS,
            headers={**BEARER, "Idempotency-Key": key.encode("utf-8")},  # raw UTF-8 bytes
        )
        assert svc.redis.dbsize() == 0
    assert "Idempotency-Key" in invalid_params(response)


async def test_stored_answers_expire_with_the_configured_ttl() -> None:
    async with service(INTAKE_IDEMPOTENCY_TTL_S="120") as svc:
        await svc.send(SMS, **{"Idempotency-Key": "order-8"})
        key = Keys(svc.settings.key_prefix).http_answer(DEFAULT_TENANT, "order-8")
        ttl = svc.redis.ttl(key)
    assert 0 < ttl <= 120
