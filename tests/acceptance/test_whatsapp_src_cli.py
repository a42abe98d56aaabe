"""``connectus send whatsapp`` without ``--src``: CONNECTUS_WHATSAPP_SRC_NUMBER, or a clear refusal."""

from __future__ import annotations

import os

import redis

from connectus_worker.ledger.keys import Keys
from tests.support.cli import run_json


def test_send_whatsapp_without_src_uses_the_setting_or_names_both(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix}
    env.pop("CONNECTUS_WHATSAPP_SRC_NUMBER", None)
    send = ["send", "whatsapp", "--to", "56987654321", "--text", "Hola"]
    refused = run_json(send, env, code=2)
    assert "src_number" in refused["error"] and "CONNECTUS_WHATSAPP_SRC_NUMBER" in refused["error"]
    queued = run_json(send, {**env, "CONNECTUS_WHATSAPP_SRC_NUMBER": "56999944837"})
    assert queued["job_id"]
    state = redis_client.hget(Keys(redis_prefix).job(queued["job_id"]), "state")
    assert state in ("queued", b"queued")
