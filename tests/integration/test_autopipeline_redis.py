"""The send path's scripts through core.autopipeline, on the real Redis, from many threads.

Every job is claimed by two threads at once (two deliveries of one message):
exactly one may win the lease, and only the winner's fenced finish may land,
whichever pipeline each call rode in.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from core.autopipeline import AutoPipeline
from core.job_messages import new_message
from core.jobs import JobStore
from core.keys import Keys

JOBS = 300


def _enqueue(store: JobStore, job_id: str) -> None:
    job = {"job_id": job_id, "kind": "sms", "key": job_id, "queue": "transactional",
           "payload": {}}  # fmt: skip
    record = {"job_id": job_id, "kind": "sms", "queue": "transactional",
              "idempotency_key": job_id, "dst": "569*****321", "attempts": 0, "fence": 0}  # fmt: skip
    store.enqueue(job_id=job_id, idempotency_key=job_id, fingerprint="fp",
                  message=new_message("transactional", "send_sms", job), record=record)  # fmt: skip


def test_racing_claims_and_fenced_finishes_keep_one_winner_per_job(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = redis.Redis.from_url(redis_url)
    auto = AutoPipeline(client)
    store = JobStore(client, Keys(redis_prefix), ttl_s=600, hot_path=auto)
    for i in range(JOBS):
        _enqueue(store, f"j{i}")
    outcomes: dict[str, list[Any]] = {f"j{i}": [] for i in range(JOBS)}
    start = threading.Barrier(32)

    def work(offset: int) -> None:
        start.wait()
        for i in range(offset % 16, JOBS, 16):  # two threads per job
            job_id = f"j{i}"
            claim = store.claim(job_id, worker_id=f"w{offset}", lease_ms=60_000,
                                token=f"t{offset}:{i}")  # fmt: skip
            landed = None
            if claim.status == "ok":
                landed = store.finish(job_id, claim.fence,
                                      {"state": "sent", "provider_id": f"p{i}"})  # fmt: skip
            outcomes[job_id].append((claim.status, landed))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    auto.close()
    try:
        for job_id, seen in outcomes.items():
            assert sorted(s for s, _ in seen) in (["busy", "ok"], ["done", "ok"]), (job_id, seen)
            assert [landed for s, landed in seen if s == "ok"] == [True]
            record = store.get(job_id)
            assert record is not None and record.state.value == "sent"
            assert record.provider_id == f"p{job_id[1:]}"
        # 2 claims + 1 finish per job went through the batcher, in fewer round trips.
        assert auto.calls == 3 * JOBS
        assert auto.batches < auto.calls
    finally:
        client.close()


def test_a_killed_connection_is_made_again_for_the_next_batch(redis_url: str) -> None:
    """The leaders' kept connection, killed by Redis: at most that batch fails."""
    client = redis.Redis.from_url(redis_url)
    auto = AutoPipeline(client)
    script = client.register_script("return ARGV[1]")
    try:
        assert script(keys=[], args=["one"], client=auto) == b"one"
        name = f"autopipeline-test-{id(auto)}"
        auto._conn.send_command("CLIENT", "SETNAME", name)
        assert auto._conn.read_response() in (b"OK", "OK")
        killed = client.execute_command("CLIENT", "KILL", "SKIPME", "yes", "ID",
                                        _client_id(client, name))  # fmt: skip
        assert killed == 1
        answers: list[Any] = []
        for value in ("two", "three"):
            try:
                answers.append(script(keys=[], args=[value], client=auto))
            except redis.ConnectionError as exc:  # the batch written on the dead socket
                answers.append(type(exc))
        assert answers[-1] == b"three"
        assert answers[0] in (b"two", redis.ConnectionError)
        auto.close()
        assert auto._conn is None  # back in the pool
    finally:
        client.close()


def _client_id(client: redis.Redis, name: str) -> int:
    for entry in client.client_list():
        if entry.get("name") == name:
            return int(entry["id"])
    raise AssertionError(f"no client named {name}")
