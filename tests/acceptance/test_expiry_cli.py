"""Time limits from the command line: ``send --max-age-s/--expires-at`` and the
refusal to replay a dead letter that would expire again at once (real Redis)."""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timedelta
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

DAY_MS = 86_400_000


class _Refused:
    def __call__(self, kind: Kind, payload: Any) -> str:
        raise e.InvalidNumber("NUMERO_INVALIDO", reason="invalid_number")


@pytest.fixture
def env(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix}


def test_send_takes_a_limit_and_refuses_a_bad_one_naming_the_field(env: dict[str, str]) -> None:
    job_id = run_json(["send", "otp", "--to", "56987654321", "--text", "Código 482913",
                       "--max-age-s", "120"], env)["job_id"]  # fmt: skip
    status = run_json(["status", job_id], env)
    expires = datetime.fromisoformat(status["expires_at"])
    created = datetime.fromisoformat(status["created_at"])
    assert expires - created == timedelta(seconds=120)
    zero = run_json(["send", "sms", "--to", "56987654321", "--text", "x", "--max-age-s", "0"],
                    env, code=2)  # fmt: skip
    assert zero["errors"] == [{"name": "max_age_s", "reason": "must be greater than 0 seconds"}]
    both = run_json(["send", "email", "--to", "ana@example.com", "--subject", "s", "--html", "x",
                     "--from", "c@empresa.cl", "--max-age-s", "60",
                     "--expires-at", "2099-01-01T00:00:00Z"], env, code=2)  # fmt: skip
    assert [err["name"] for err in both["errors"]] == ["expires_at"] and "not both" in both["error"]
    naive = run(["send", "whatsapp-qr", "--to", "56987654321", "--text", "x",
                 "--expires-at", "2099-01-01 10:00"], env)  # fmt: skip
    assert naive.returncode == 2 and "expires_at: has no UTC offset" in naive.stderr


@pytest.fixture
def dead(env: dict[str, str]) -> dict[str, str]:
    """Dead letters made by the real pipeline: refused two days after it was due (past
    MAX_MESSAGE_AGE_S by now), refused a minute ago, and one that expired (max_age_s)."""
    now = time.time_ns() // 1_000_000
    settings = load_settings(env)
    client = redis.Redis.from_url(env["REDIS_URL"])
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=86_400)  # fmt: skip
    ids: dict[str, str] = {}
    for name, age_ms in (("stale", 2 * DAY_MS), ("fresh", 60_000), ("expired", 10_000)):
        producer = Producer(settings, redis_client=client, clock=lambda a=age_ms: now - a)
        limit = {"max_age_s": 5} if name == "expired" else {}
        ids[name] = producer.send_sms("56987654321", f"hola {name}", **limit)  # type: ignore[arg-type]
        rid = client.lpop(producer.store.keys.queue("transactional"))
        raw = client.hget(producer.store.keys.queue_messages("transactional"), rid)  # type: ignore[arg-type]
        job = dramatiq.Message.decode(raw).kwargs["job"]  # type: ignore[arg-type]
        # The expired one is handled now, ten seconds after it was queued.
        worker_now = now if name == "expired" else now - age_ms
        pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, send=_Refused(), policy=policy,
                                worker_id="t", lease_ms=60_000, clock=lambda t=worker_now: t,
                                rng=random.Random(1))  # fmt: skip
        assert pipeline.handle(Kind.SMS, job) == "failed"
    client.close()
    return ids


def test_a_dead_letter_past_its_expiry_is_listed_and_refused_with_the_reason(
    env: dict[str, str], dead: dict[str, str]
) -> None:
    rows = {r["job_id"]: r for r in run_json(["dlq", "list"], env)["dead_letters"]}
    assert rows[dead["expired"]]["error_class"] == "Expired"
    assert rows[dead["fresh"]]["replayable"] is True
    for name, limit in (("expired", "max_age_s"), ("stale", "MAX_MESSAGE_AGE_S (86400 s)")):
        row = rows[dead[name]]
        assert row["replayable"] is False
        assert "would expire again at once" in row["not_replayable_because"]
        assert limit in row["not_replayable_because"]
    text = run(["dlq", "list"], env).stdout
    line = next(line for line in text.splitlines() if line.startswith(dead["stale"]))
    assert "(not replayable: it would expire again at once" in " ".join(text.split())
    assert "InvalidNumber" in line
    refused = run_json(["dlq", "replay", dead["expired"]], env, code=1)
    assert refused["job_id"] == dead["expired"] and "would expire again at once" in refused["error"]
    every = run_json(["dlq", "replay", "--all"], env, code=1)
    results = {r["job_id"]: r["result"] for r in every["results"]}
    assert results == {dead["fresh"]: "replayed", dead["stale"]: "refused",
                       dead["expired"]: "refused"}  # fmt: skip
    assert run_json(["status", dead["stale"]], env)["state"] == "failed"
