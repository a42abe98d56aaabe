"""No caller's string reaches another kind of key (issue 21, High 1).

A message's idempotency key ``campaign:K`` used to be campaign ``K``'s key,
``job:<id>`` an automatic key, and the HTTP key ``X:lock`` the in-flight
marker of ``X``. The property: every name built from a caller's key reads back
as exactly one (kind, tenant, key), and no internal key reads as one. Then
the three collisions of the issue, from Python and over (in-process) HTTP.
"""

from __future__ import annotations

import re

import fakeredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import load_settings
from connectus_worker.config.tenants import DEFAULT_TENANT, TENANT_PATTERN
from connectus_worker.domain.validation import validate_idempotency_key
from connectus_worker.ledger.keys import USER_KEY_KINDS, Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaigns import CampaignProducer
from tests.support.service import BEARER, NUMBER, SMS, service

PREFIX = "cw"
KEYS = Keys(PREFIX)
#: Each kind of key built from a caller's string, by its builder.
BUILDERS = {
    "idem:msg": lambda tenant, key: KEYS.idempotency(key, tenant),
    "idem:campaign": lambda tenant, key: KEYS.campaign_idempotency(key, tenant),
    "http-idem:answer": KEYS.http_answer,
    "http-idem:lock": KEYS.http_lock,
}

# What validate_idempotency_key accepts: 1-200 printable ASCII characters, no space.
user_keys = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200
)
tenants = st.from_regex(TENANT_PATTERN, fullmatch=True)
kinds = st.sampled_from(sorted(BUILDERS))
#: Ids the project makes (job: 32 hex digits, campaign: 16) and any id a URL may carry.
ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)

_TENANT = re.compile(TENANT_PATTERN)


def read_back(name: str) -> tuple[str, str, str] | None:
    """(kind, tenant, key) of a name built from a caller's key; None for any other."""
    rest = name.removeprefix(f"{PREFIX}:")
    for kind in USER_KEY_KINDS:
        if rest.startswith(kind + ":"):
            tenant, colon, key = rest[len(kind) + 1 :].partition(":")
            if colon and _TENANT.match(tenant) and key:
                return kind, tenant, key
    return None


def test_every_kind_of_user_key_has_a_builder() -> None:
    assert set(BUILDERS) == set(USER_KEY_KINDS)


@settings(max_examples=400, derandomize=True, database=None)
@given(kind=kinds, tenant=tenants, key=user_keys)
def test_a_user_key_reads_back_as_itself_only(kind: str, tenant: str, key: str) -> None:
    validate_idempotency_key(key)
    name = BUILDERS[kind](tenant, key)
    # One reading only: two different (kind, tenant, key) can't share a name.
    assert read_back(name) == (kind, tenant, key)


@settings(max_examples=400, derandomize=True, database=None)
@given(first=st.tuples(kinds, tenants, user_keys), second=st.tuples(kinds, tenants, user_keys))
def test_two_different_user_keys_never_share_a_redis_key(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    if first != second:
        assert BUILDERS[first[0]](*first[1:]) != BUILDERS[second[0]](*second[1:])


@settings(max_examples=300, derandomize=True, database=None)
@given(kind=kinds, tenant=tenants, key=user_keys, some_id=ids, chunk=st.integers(0, 10**6))
def test_no_user_key_is_an_internal_key(
    kind: str, tenant: str, key: str, some_id: str, chunk: int
) -> None:
    internal = [
        KEYS.automatic_idempotency(some_id), KEYS.job(some_id), KEYS.provider(some_id),
        KEYS.campaign(some_id), KEYS.campaign_counts(some_id), KEYS.campaign_chunk(some_id, chunk),
        KEYS.campaign_parked(some_id), KEYS.campaign_deliveries(some_id),
        KEYS.campaign_made(some_id), KEYS.campaign_pump(some_id), KEYS.queue(some_id),
        KEYS.queue_messages(some_id),
        *(value for name in dir(KEYS) if isinstance(value := getattr(KEYS, name), str)),
    ]  # fmt: skip
    name = BUILDERS[kind](tenant, key)
    assert name not in internal
    # And none of them reads as a caller's key (not even the automatic ones).
    assert all(read_back(other) is None for other in internal if isinstance(other, str))


def test_the_collisions_of_the_issue_are_different_keys_now() -> None:
    assert KEYS.idempotency("campaign:K") != KEYS.campaign_idempotency("K")
    assert KEYS.idempotency("job:abc") != KEYS.automatic_idempotency("abc")
    assert KEYS.http_answer("t", "X:lock") != KEYS.http_lock("t", "X")
    assert KEYS.idempotency("k", "acme") != KEYS.idempotency("k", "globex")


# --- the collisions, from Python ---------------------------------------------------------


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


ROWS = [{"dst_number": "+56 9 8765 4321", "name": "Ana"}]


def test_a_message_keyed_campaign_k_and_campaign_k_are_two_things(
    redis_client: fakeredis.FakeRedis,
) -> None:
    settings_ = load_settings({})
    producer = Producer(settings_, redis_client=redis_client)
    campaigns = CampaignProducer(settings_, redis_client=redis_client)
    # The issue's order: the message first, then the campaign with key K.
    job_id = producer.send_sms(NUMBER, "hola", idempotency_key="campaign:promo-nov")
    accepted = campaigns.send(
        ROWS, CampaignOptions(name="Promo", text="Hola {name}", idempotency_key="promo-nov")
    )
    # And the other order: a campaign with key K2, then a message keyed campaign:K2.
    first = campaigns.send(
        ROWS, CampaignOptions(name="Promo 2", text="Hola {name}", idempotency_key="promo-dic")
    )
    after = producer.send_sms(NUMBER, "hola", idempotency_key="campaign:promo-dic")
    assert accepted.created and accepted.campaign_id != job_id
    assert campaigns.get(accepted.campaign_id) is not None  # stored, not the job's id
    assert after not in (first.campaign_id, job_id)
    assert producer.get_status(after).idempotency_key == "campaign:promo-dic"


def test_a_key_named_like_an_automatic_key_is_just_a_key(
    redis_client: fakeredis.FakeRedis,
) -> None:
    producer = Producer(load_settings({}), redis_client=redis_client)
    automatic = producer.send_sms(NUMBER, "sin clave")
    # Used to be the automatic job's key: a conflict (other payload) or its id.
    keyed = producer.send_sms(NUMBER, "otra cosa", idempotency_key=f"job:{automatic}")
    again = producer.send_sms(NUMBER, "otra cosa", idempotency_key=f"job:{automatic}")
    assert keyed != automatic and again == keyed
    assert producer.get_status(automatic).state.value == "queued"


# --- the collisions, over HTTP (in process; tests/integration has them on a real Redis) ----


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_http_key_ending_in_lock_is_not_another_keys_marker() -> None:
    async with service() as svc:
        # X:lock first: its answer used to be stored where X's in-flight marker goes.
        locked = await svc.send(SMS, **{"Idempotency-Key": "order-9:lock"})
        plain = await svc.send({**SMS, "sms_content": "otro"}, **{"Idempotency-Key": "order-9"})
        # And X first, then X:lock while X's marker would be held.
        marker = Keys(svc.settings.key_prefix).http_lock(DEFAULT_TENANT, "order-10")
        svc.redis.set(marker, "in-flight", px=30_000)
        other = await svc.send(SMS, **{"Idempotency-Key": "order-10:lock"})
    assert (locked.status_code, plain.status_code, other.status_code) == (202, 202, 202)
    assert locked.json()["job_id"] != plain.json()["job_id"]


@pytest.mark.anyio
async def test_a_message_keyed_campaign_k_over_http_is_a_message() -> None:
    async with service() as svc:
        message = await svc.send(SMS, **{"Idempotency-Key": "campaign:promo-nov"})
        campaign = await svc.client.post(
            "/v1/campaigns",
            json={"name": "Promo", "kind": "sms", "text": "Hola {name}", "recipients": ROWS},
            headers={**BEARER, "Idempotency-Key": "promo-nov"},
        )
        read = await svc.client.get(
            f"/v1/campaigns/{campaign.json()['campaign_id']}", headers=BEARER
        )
    assert message.status_code == 202, message.text
    assert campaign.status_code == 202 and campaign.json()["created"] is True
    assert campaign.json()["campaign_id"] != message.json()["job_id"]
    assert read.status_code == 200 and read.json()["name"] == "Promo"


#: A KEY_PREFIX with a Redis Cluster hash tag (config/settings.py allows one).
TAGGED = Keys("x.{t1}-y")


@settings(max_examples=300, derandomize=True, database=None)
@given(kind=kinds, tenant=tenants, key=user_keys, some_id=ids)
def test_a_hash_tagged_prefix_keeps_every_key_in_its_slot(
    kind: str, tenant: str, key: str, some_id: str
) -> None:
    # Even a caller's key with braces of its own: Redis hashes on the first {...}.
    by_kind = {"idem:msg": TAGGED.idempotency(key, tenant),
               "idem:campaign": TAGGED.campaign_idempotency(key, tenant),
               "http-idem:answer": TAGGED.http_answer(tenant, key),
               "http-idem:lock": TAGGED.http_lock(tenant, key)}  # fmt: skip
    names = [by_kind[kind], TAGGED.job(some_id), TAGGED.campaign_chunk(some_id, 3),
             f"{TAGGED.dramatiq_namespace}:{some_id}"]  # fmt: skip
    assert {key_slot(name.encode()) for name in names} == {key_slot(b"t1")}
    # The prefix has no ':', so a name still splits from the left one way only.
    assert by_kind[kind].split(":", 1)[0] == TAGGED.prefix
