"""With a hash-tagged ``KEY_PREFIX`` every key a deployment writes is in one Redis
Cluster hash slot (docs/scaling.md, "Redis Cluster and hash slots").

A real stack (the sandbox, a worker process, real Redis) runs a representative
flow with ``KEY_PREFIX={t1-<hex>}``: an SMS, an OTP and an e-mail sent, a
scheduled SMS, a dead letter and a small v1 bulk campaign. Then every key under
the prefix, Dramatiq's namespace ``{t1-<hex>}-dramatiq`` included, is SCANned and
must map to the slot of the tag (``redis.crc.key_slot``), and the keys found must
include those the flow is known to write (so an empty or partial SCAN fails).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from redis.crc import key_slot

from connectus_worker.domain.models import State
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaign_plan import CampaignOptions
from devtools.stack import LocalStack
from tests.support.stack_checks import (
    CAMPAIGN_ENV,
    NUMBER,
    campaign_finished,
    campaign_tools,
    numbers,
    settle,
)
from tests.support.waiting import wait_for

TAG = f"t1-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_prefix() -> str:
    """``{t1-<hex>}``: a prefix that is one hash tag (and cleaned up by ``redis_client``)."""
    return "{" + TAG + "}"


def test_every_key_of_a_hash_tagged_deployment_is_in_one_slot(
    make_stack: Callable[..., LocalStack], redis_prefix: str, redis_url: str
) -> None:
    stack = make_stack(env={**CAMPAIGN_ENV, "CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"})
    assert stack.settings.key_prefix == redis_prefix
    producer = Producer(stack.settings)
    due = datetime.now(UTC) + timedelta(seconds=1)
    job_ids = [
        producer.send_sms(NUMBER, "hola"),
        producer.send_otp(NUMBER, "Tu codigo es 123456"),
        producer.send_email("ana@example.com", "Asunto", "<p>hola</p>"),
        producer.send_sms(NUMBER, "programado", deliver_at=due),
        producer.send_sms(NUMBER, "sin subcliente", id_client="no-such-client"),
    ]
    campaigns, control = campaign_tools(stack)
    cid = campaigns.send([{"dst_number": d} for d in numbers(30, start=7_000)],
                         CampaignOptions(name="slot", text="Hola")).campaign_id  # fmt: skip
    records = settle(producer, job_ids)
    assert Counter(r.state for r in records.values()) == {State.SENT: 4, State.FAILED: 1}
    wait_for(lambda: campaign_finished(control, cid), timeout_s=60, what="the campaign to finish")
    keys = Keys(redis_prefix)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert client.zscore(keys.dead_letters, job_ids[-1]) is not None
        written = set(client.scan_iter(match=f"{redis_prefix}*", count=1000))
    finally:
        client.close()
    # What the flow is known to have written: jobs, the dead letters, the campaign,
    # Dramatiq's queues (its namespace under the same tag).
    expected = {keys.job(job_id) for job_id in job_ids} | {keys.dead_letters, keys.campaign(cid)}
    assert expected <= written, sorted(expected - written)
    assert any(k.startswith(f"{keys.dramatiq_namespace}:") for k in written), sorted(written)
    slots = Counter(key_slot(k.encode()) for k in written)
    assert set(slots) == {key_slot(TAG.encode())}, {
        k: key_slot(k.encode()) for k in written if key_slot(k.encode()) != key_slot(TAG.encode())
    }
