"""ledger.lookup on fakeredis: each way of finding a job, its history's shape, bad queries."""

from __future__ import annotations

import fakeredis
import pytest
from dramatiq import Message

from connectus_worker.config import load_settings
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.delivery_status import DeliveryStatuses
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.lookup import find_jobs, job_history, recipient_of
from connectus_worker.producers.api import Producer

SETTINGS = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "contacto@empresa.cl", "JOB_TTL_S": "600"})
KEYS = Keys(SETTINGS.key_prefix)
KEY = SETTINGS.content_key
NOW = 1_700_000_000_000


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def _producer(client: fakeredis.FakeRedis, tenant: str = "default", now: int = NOW) -> Producer:
    return Producer(SETTINGS, tenant=tenant, redis_client=client, clock=Clock(now))


def find(client: fakeredis.FakeRedis, query: str, limit: int = 20) -> list[str]:
    return find_jobs(client, KEYS, query, content_hash_key=KEY, limit=limit)


def test_a_job_is_found_by_its_id_key_correlation_id_and_recipient(client) -> None:
    job = _producer(client).send_sms(
        "+56 9 8765 4321", "Hola", idempotency_key="order-17", correlation_id="req-9"
    )
    _producer(client).send_sms("56987651111", "Otro")  # another recipient, no key
    assert find(client, job) == [job]
    assert find(client, "order-17") == [job]
    assert find(client, "req-9") == [job]
    # Typed in any form validation accepts: the same normalised number, the same digest.
    for typed in ("56987654321", "+56 9 8765 4321", "0056987654321", "987654321"):
        assert find(client, typed) == [job], typed


def test_a_recipient_is_found_only_by_its_full_value(client) -> None:
    job = _producer(client).send_sms("56987654321", "Hola")
    assert find(client, "56987654321") == [job]
    for part in ("5698765432", "87654321", "4321", "569*****321"):
        assert find(client, part) == [], part
    # No plain number is kept anywhere in Redis.
    assert not [k for k in client.keys("*") if b"987654321" in k]
    for key in client.keys(f"{KEYS.prefix}:find:*"):
        assert b"987654321" not in b"".join(client.zrange(key, 0, -1))


def test_an_email_recipient_is_matched_whatever_its_case(client) -> None:
    job = _producer(client).send_email("Juan.Perez@Empresa.cl", "Asunto", "Hola")
    assert find(client, "juan.perez@empresa.cl") == [job]
    assert find(client, " JUAN.PEREZ@EMPRESA.CL ") == [job]
    assert find(client, "perez@empresa.cl") == []


def test_two_tenants_with_one_idempotency_key_are_both_found_newest_first(client) -> None:
    first = _producer(client, "acme").send_sms("56987654321", "A", idempotency_key="k1")
    second = _producer(client, "beta", NOW + 5).send_sms("56987651111", "B", idempotency_key="k1")
    assert first != second
    assert find(client, "k1") == [second, first]
    # Each tenant's key still answers only its own job (no collision).
    assert client.get(KEYS.idempotency("k1", "acme")).decode() == first
    assert client.get(KEYS.idempotency("k1", "beta")).decode() == second


def test_a_repeated_key_indexes_the_job_once(client) -> None:
    producer = _producer(client)
    job = producer.send_sms("56987654321", "Hola", idempotency_key="same")
    assert producer.send_sms("56987654321", "Hola", idempotency_key="same") == job
    assert find(client, "same") == [job]
    assert find(client, "56987654321") == [job]


def test_limit_keeps_the_newest(client) -> None:
    jobs = [
        _producer(client, now=NOW + i).send_sms("56987654321", f"m{i}", correlation_id="batch")
        for i in range(5)
    ]
    assert find(client, "batch", limit=2) == [jobs[4], jobs[3]]
    assert find(client, "56987654321") == jobs[::-1]


def test_an_index_entry_without_its_record_is_not_answered(client) -> None:
    job = _producer(client).send_sms("56987654321", "Hola", correlation_id="c")
    client.delete(KEYS.job(job))
    assert find(client, "c") == [] and find(client, job) == []


def test_index_entries_expire_with_the_record_and_old_ones_are_trimmed(client) -> None:
    old = _producer(client).send_sms("56987654321", "Hola", correlation_id="shared")
    for key in (KEYS.find_correlation("shared"), KEYS.job(old)):
        assert 0 < client.ttl(key) <= 600
    # A job made after the first record's TTL drops the stale entry from the shared key.
    new = _producer(client, now=NOW + 601_000).send_sms(
        "56987654321", "Hi", correlation_id="shared"
    )
    assert [m.decode() for m in client.zrange(KEYS.find_correlation("shared"), 0, -1)] == [new]


def test_a_campaign_recipients_key_names_its_job(client) -> None:
    client.hset(KEYS.job("c1-3"), mapping={"job_id": "c1-3"})
    assert find(client, "campaign:c1:3") == ["c1-3"]
    assert find(client, "campaign:c1:4") == []
    job = _producer(client).send_sms("56987654321", "Hola")  # no key: its record says job:<id>
    assert find(client, f"job:{job}") == [job]


@pytest.mark.parametrize(
    ("query", "field"), [("x" * 257, "query"), ("a\nb", "query"), ("a\x00b", "query")]
)
def test_a_bad_query_is_refused_naming_the_field(client, query: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        find(client, query)
    assert caught.value.field == field


def test_an_empty_query_finds_nothing_and_a_bad_limit_is_refused(client) -> None:
    assert find(client, "   ") == []
    with pytest.raises(InvalidInput, match="limit"):
        find(client, "x", limit=0)


def test_recipient_of_names_only_valid_recipients() -> None:
    assert recipient_of("+56 9 8765 4321") == "56987654321"
    assert recipient_of("Ana@Example.COM") == "Ana@example.com"  # the digest lower-cases it
    assert recipient_of("order-17") is None and recipient_of("123") is None


def test_history_is_masked_and_carries_no_content_nor_otp(client) -> None:
    job = _producer(client).send_otp("56987654321", "Tu código es 493817", correlation_id="login-1")
    history = job_history(client, KEYS, job)
    assert history is not None
    assert history.dst == "569*****321" and history.state == "queued"
    assert history.correlation_id == "login-1" and history.attempts == 0
    assert [(e.event, e.at_ms) for e in history.events] == [("queued", NOW)]
    dumped = history.model_dump_json()
    assert "493817" not in dumped and "987654321" not in dumped
    assert "content" not in dumped and "fingerprint" not in dumped
    assert job_history(client, KEYS, "nope") is None


def test_history_lists_attempts_errors_and_statuses_in_order(client) -> None:
    clock = Clock(NOW)
    job = _producer(client).send_sms("56987654321", "Hola")
    store = JobStore(client, KEYS, ttl_s=600, clock=clock)
    clock.now = NOW + 1000
    claim = store.claim(job, worker_id="w", lease_ms=30_000)
    clock.now = NOW + 2000
    fields = {
        "state": "retrying",
        "error_class": "Timeout",
        "last_error": "read timed out 56987654321",
    }
    queued = client.lindex(KEYS.queue("transactional"), 0)
    message = client.hget(KEYS.queue_messages("transactional"), queued)
    assert message is not None
    assert store.finish(
        Finish(job, claim.fence, "retry", fields, Message.decode(message), NOW + 5000)
    )
    clock.now = NOW + 6000
    claim = store.claim(job, worker_id="w", lease_ms=30_000)
    clock.now = NOW + 7000
    assert store.finish(
        Finish(job, claim.fence, "done", {"state": "sent", "outcome": "sent", "provider_id": "778"})
    )
    history = job_history(client, KEYS, job)
    assert history is not None
    assert history.state == "sent" and history.attempts == 2 and history.provider_id == "778"
    assert [(e.event, e.at_ms) for e in history.events] == [
        ("queued", NOW),
        ("retrying", NOW + 2000),
        ("sent", NOW + 7000),
    ]
    assert history.events[1].detail.startswith("attempt 1: Timeout: read timed out")
    assert "987654321" not in history.events[1].detail  # masked when shown
    assert history.events[2].detail == "attempt 2"


def test_the_event_ring_keeps_the_last_sixteen(client) -> None:
    job = _producer(client).send_sms("56987654321", "Hola")
    statuses = DeliveryStatuses(client, KEYS)
    for i, status in enumerate(["EN_COLA", "ENVIADO_A_CARRIER"] * 10):
        client.hset(KEYS.job(job), "delivery_status_rank", 0)  # let every one apply
        assert statuses.record(job, status, NOW + i)
    history = job_history(client, KEYS, job)
    assert history is not None and len(history.events) == 16
    assert [e.at_ms for e in history.events] == [NOW + i for i in range(4, 20)]
    assert history.events[-1].event == "delivery_status"
    assert history.events[-1].detail == "ENVIADO_A_CARRIER"
