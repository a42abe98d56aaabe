"""``connectus dlq show|replay|purge --json`` with filters, run as a subprocess on a real Redis."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import dramatiq
import pytest
import redis

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.producers.api import Producer
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from tests.support.cli import run, run_json

HOUR_MS = 3_600_000


class _Sender:
    def __call__(self, kind: Kind, payload: Any) -> str:
        raise e.InvalidNumber("NUMERO_INVALIDO", reason="invalid_number")


@pytest.fixture
def env(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix}


@pytest.fixture
def dead(env: dict[str, str]) -> dict[str, str]:
    """Dead letters made by the real pipeline: an SMS 3 h old on bulk, a fresh SMS and
    OTP, and a poison entry."""
    now = time.time_ns() // 1_000_000
    settings = load_settings(env)
    client = redis.Redis.from_url(env["REDIS_URL"])
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=86_400)  # fmt: skip
    ids: dict[str, str] = {}
    for name, age_ms in (("old", 3 * HOUR_MS), ("fresh", 60_000), ("otp", 1_000)):
        producer = Producer(settings, redis_client=client, clock=lambda a=age_ms: now - a)
        if name == "otp":
            ids[name] = producer.send_otp("56987654321", "codigo 123456")
        else:
            ids[name] = producer.send_sms("56987654321", f"hola {name}",
                                          priority="bulk" if name == "old" else "transactional")  # fmt: skip
        queue = {"old": "bulk", "fresh": "transactional", "otp": "otp"}[name]
        rid = client.lpop(producer.store.keys.queue(queue))
        raw = client.hget(producer.store.keys.queue_messages(queue), rid)  # type: ignore[arg-type]
        job = dramatiq.Message.decode(raw).kwargs["job"]  # type: ignore[arg-type]
        pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=_Sender(), policy=policy, worker_id="t",
                                lease_ms=60_000, clock=lambda a=age_ms: now - a,
                                rng=random.Random(1))  # fmt: skip
        assert pipeline.handle(Kind.OTP if name == "otp" else Kind.SMS, job) == "failed"
    ids["poison"] = Producer(settings, redis_client=client).store.quarantine(
        b"\xff\xfenot json", "undecodable payload"
    )
    client.close()
    return ids


def test_list_and_show_with_filters(env: dict[str, str], dead: dict[str, str]) -> None:
    listed = run_json(["dlq", "list", "--older-than", "1h"], env)
    assert [r["job_id"] for r in listed["dead_letters"]] == [dead["old"]]
    listed = run_json(["dlq", "list", "--newer-than", "30m", "--reason", "numero"], env)
    assert {r["job_id"] for r in listed["dead_letters"]} == {dead["fresh"], dead["otp"]}
    assert run_json(["dlq", "list", "--queue", "otp"], env)["count"] == 1
    shown = run_json(["dlq", "show", dead["old"]], env)
    assert shown["record"]["state"] == "failed" and shown["dead_letter"]["queue"] == "bulk"
    assert shown["message"]["kwargs"]["job"]["payload"]["dst_number"] == "569*****321"
    assert "56987654321" not in run(["dlq", "show", dead["old"], "--json"], env).stdout
    poison = run_json(["dlq", "show", dead["poison"]], env)
    assert poison["dead_letter"]["poison"] is True and poison["record"] is None
    assert "not in the dead-letter set" in run_json(["dlq", "show", "nope"], env, code=1)["error"]
    bad = run_json(["dlq", "list", "--older-than", "soon"], env, code=2)
    assert "not a duration" in bad["error"]


def test_replay_by_filter_keeps_the_job_and_refuses_poison(
    env: dict[str, str], dead: dict[str, str]
) -> None:
    refused = run_json(["dlq", "replay", dead["poison"]], env, code=1)
    assert "poison" in refused["error"] and refused["job_id"] == dead["poison"]
    assert "OTP" in run_json(["dlq", "replay", dead["otp"]], env, code=1)["error"]
    assert run_json(["dlq", "replay", "--older-than", "1h"], env, code=2)["error"]  # no --all
    body = run_json(["dlq", "replay", "--all", "--queue", "bulk"], env)
    assert body["replayed"] == 1 and body["results"] == [{"job_id": dead["old"],
                                                          "result": "replayed"}]  # fmt: skip
    status = run_json(["status", dead["old"]], env)
    assert status["state"] == "queued" and status["job_id"] == dead["old"]
    assert [r["job_id"] for r in run_json(["dlq", "list"], env)["dead_letters"]] == [
        dead["poison"], dead["otp"], dead["fresh"]]  # fmt: skip


def test_purge_needs_yes_and_removes_only_the_matching(
    env: dict[str, str], dead: dict[str, str]
) -> None:
    dry = run_json(["dlq", "purge", "--all", "--newer-than", "1h", "--reason", "undecodable"], env)
    assert dry == {"dry_run": True, "job_ids": [dead["poison"]], "count": 1, "purged": 0,
                   "missing": []}  # fmt: skip
    assert run_json(["dlq", "list"], env)["count"] == 4
    done = run_json(["dlq", "purge", "--all", "--reason", "undecodable", "--yes"], env)
    assert done["purged"] == 1 and done["dry_run"] is False
    by_id = run_json(["dlq", "purge", dead["fresh"], "nope", "--yes"], env)
    assert by_id["purged"] == 1 and by_id["missing"] == ["nope"]
    left = run_json(["dlq", "list"], env)["dead_letters"]
    assert [r["job_id"] for r in left] == [dead["otp"], dead["old"]]
