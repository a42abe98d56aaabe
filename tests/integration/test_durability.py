"""Confirmed writes (durability.py) against a real Redis without replicas.

The failover itself, with a replica and sentinels, is tests/integration/test_sentinel_failover.py.
"""

from __future__ import annotations

import pytest
import redis

from connectus_worker.durability import UNCONFIRMED, Durability, NotDurable
from connectus_worker.ledger.job_messages import new_message
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.keys import Keys


def _store(client: redis.Redis, prefix: str, durability: Durability) -> JobStore:
    return JobStore(client, Keys(prefix), ttl_s=60, durability=durability)


def test_a_claim_no_replica_confirms_is_refused_and_repeats_as_the_same_claim(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = redis.Redis.from_url(redis_url)
    redis_client.hset(f"{redis_prefix}:job:j1", mapping={"state": "queued", "fence": 0})
    confirmed = _store(client, redis_prefix, Durability(min_replicas=1, timeout_ms=50))
    message = new_message("transactional", "send_sms", {"job_id": "j1", "payload": {}})
    claim = {"worker_id": "w", "lease_ms": 60_000, "token": "t1", "message": message}

    with pytest.raises(NotDurable, match="not confirmed by 1 replicas within 50 ms"):
        confirmed.claim("j1", **claim)
    # The claim is on the primary (not sendable: unconfirmed), and repeating it with
    # its token is the same claim, not a second one.
    assert redis_client.hget(f"{redis_prefix}:job:j1", "state") == "sending"
    with pytest.raises(NotDurable):
        confirmed.claim("j1", **claim)
    again = _store(client, redis_prefix, UNCONFIRMED).claim("j1", **claim)
    assert (again.status, again.fence, again.attempts) == ("ok", 1, 1)
    client.close()


def test_without_waitaof_the_write_relies_on_the_server_fsync_policy(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = redis.Redis.from_url(redis_url)
    version = tuple(int(p) for p in str(client.info("server")["redis_version"]).split(".")[:2])
    durability = Durability(min_replicas=0, timeout_ms=50)
    answers = durability.run(client, lambda pipe: pipe.set(f"{redis_prefix}:k", "v"))
    assert answers == [True]
    assert redis_client.get(f"{redis_prefix}:k") == "v"
    if version < (7, 2):  # no WAITAOF: remembered, and not asked again
        assert durability.confirms is False
        assert durability.run(client, lambda pipe: pipe.get(f"{redis_prefix}:k")) == [b"v"]
    client.close()


def test_an_error_of_a_queued_command_is_raised(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = redis.Redis.from_url(redis_url)
    redis_client.set(f"{redis_prefix}:s", "text")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        Durability(min_replicas=1, timeout_ms=50).run(
            client, lambda pipe: pipe.hset(f"{redis_prefix}:s", "f", "v")
        )
    client.close()
