"""The ``connectus`` command line, run as a subprocess, as a user or a script would."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.cli import run, run_json, run_json_together
from tests.support.stack_checks import FAST, running_stack
from tests.support.waiting import wait_for


@pytest.fixture
def env(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "KEY_PREFIX": redis_prefix,
        "CONNECTUS_DEFAULT_SRC_EMAIL": "contacto@empresa.cl",
    }


def settled(stack: LocalStack, job_id: str) -> bool:
    """Whether the job is sent or failed: the waits read Redis directly (a CLI
    process per poll costs a second); what is asserted is read through the CLI."""
    return Producer(stack.settings).get_status(job_id).state.value in {"sent", "failed"}


def test_send_then_status_as_json(env: dict[str, str]) -> None:
    job_id = run_json(
        ["send", "sms", "--to", "+56 9 8765 4321", "--text", "Hola", "--key", "cli-1"], env
    )["job_id"]
    again = run_json(
        ["send", "sms", "--to", "56987654321", "--text", "Hola", "--key", "cli-1"], env
    )
    assert again["job_id"] == job_id
    status = run_json(["status", job_id], env)
    assert status["state"] == "queued" and status["dst"] == "569*****321"
    assert status["idempotency_key"] == "cli-1"


def test_bad_input_exits_2_naming_every_field_and_queues_nothing(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    body = run_json(["send", "sms", "--to", "123", "--text", " "], env, code=2)
    assert {e["name"] for e in body["errors"]} == {"dst_number", "sms_content"}
    assert "dst_number" in body["error"]
    assert list(redis_client.scan_iter(f"{redis_prefix}*")) == []


def test_bad_input_without_json_is_a_readable_error(env: dict[str, str]) -> None:
    result = run(["send", "email", "--to", "nope", "--subject", "s", "--html", "x"], env)
    assert result.returncode == 2
    assert "dst_email" in result.stderr


def test_idempotency_conflict_is_refused(env: dict[str, str]) -> None:
    run_json(["send", "otp", "--to", "56987654321", "--text", "codigo 1", "--key", "otp-1"], env)
    body = run_json(
        ["send", "otp", "--to", "56987654321", "--text", "codigo 2", "--key", "otp-1"], env, code=2
    )
    assert "idempotency_key" in body["error"]


def test_status_json_of_an_otp_shows_no_digest_of_its_content(env: dict[str, str]) -> None:
    # issue 21, High 2: a digest of a 6-digit code gives the code away.
    sent = run_json(["send", "otp", "--to", "56987654321", "--text", "codigo 482913"], env)
    status = run_json(["status", sent["job_id"]], env)
    assert status["kind"] == "otp" and status["job_id"] == sent["job_id"]
    assert not {name for name in status if "hash" in name or "hmac" in name or "sha" in name}
    assert hashlib.sha256(b"codigo 482913").hexdigest() not in json.dumps(status)
    assert not re.search(r"[0-9a-f]{64}", json.dumps(status))


@pytest.mark.parametrize(
    ("variable", "value", "args"),
    [("WORKER_THREADS", "0", ["status", "x"]), ("REDIS_URL", "http://x", ["send", "sms", "--to", "1", "--text", "x"]),
     ("CONNECTUS_READ_TIMEOUT_S", "soon", ["worker"]),
     # issue 21: each of these used to start (or die in a traceback, or crash-loop)
     ("CONNECTUS_READ_TIMEOUT_S", "inf", ["worker"]),
     ("REDIS_URL", "redis://127.0.0.1:99999/0", ["status", "x"]),
     ("DEFAULT_REGION", "XX", ["send", "sms", "--to", "56987654321", "--text", "x"]),
     ("CONNECTUS_API_KEY", "sandbox-key", ["status", "x"])],
)  # fmt: skip
def test_bad_setting_exits_78_naming_the_variable(
    env: dict[str, str], variable: str, value: str, args: list[str]
) -> None:
    result = run(args, {**env, variable: value})
    assert result.returncode == 78, result.stderr
    assert variable in result.stderr


def test_sample_secret_is_allowed_in_sandbox_mode(env: dict[str, str]) -> None:
    # The same published key that exits 78 above is fine for a local sandbox stack.
    body = run_json(["status", "x"], {**env, "CONNECTUS_API_KEY": "sandbox-key",
                                      "RUN_MODE": "sandbox"}, code=1)  # fmt: skip
    assert "x" in body["error"]


def test_worker_without_credentials_names_the_missing_variable(env: dict[str, str]) -> None:
    clean = {k: v for k, v in env.items() if not k.startswith("CONNECTUS_API_")}
    result = run(["worker"], clean)
    assert result.returncode == 78
    assert "CONNECTUS_API_USER" in result.stderr


def test_unknown_job_status_fails_clearly(env: dict[str, str]) -> None:
    body = run_json(["status", "does-not-exist"], env, code=1)
    assert "does-not-exist" in body["error"]


def test_cancel_a_scheduled_job(env: dict[str, str]) -> None:
    refused = run_json(
        ["send", "sms", "--to", "56987654321", "--text", "luego", "--at", "2099-01-01 10:00"],
        env,
        code=2,
    )
    assert "deliver_at" in refused["error"]  # too far: beyond the job record's lifetime
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    job_id = run_json(["send", "sms", "--to", "56987654321", "--text", "luego", "--at", at], env)[
        "job_id"
    ]
    assert run_json(["status", job_id], env)["state"] == "scheduled"
    assert run_json(["cancel", job_id], env)["result"] == "cancelled"
    assert run_json(["status", job_id], env)["state"] == "cancelled"


def test_a_message_sent_from_the_cli_is_delivered_by_the_worker(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    with running_stack(
        redis_url=redis_url,
        env={"KEY_PREFIX": redis_prefix},
        processes=1,
        threads=2,
        log_dir=tmp_path,
    ) as stack:
        env = stack.env
        job_id = run_json(["send", "whatsapp-qr", "--to", "56987654321", "--text", "Hola QR"], env)[
            "job_id"
        ]
        failing = run_json(
            ["send", "sms", "--to", "56987654321", "--text", "x", "--client", "no-such-client"], env
        )["job_id"]

        wait_for(
            lambda: settled(stack, job_id) and settled(stack, failing),
            timeout_s=60,
            what="both jobs settled",
        )
        assert run_json(["status", job_id], env)["state"] == "sent"
        dead = run_json(["dlq", "list"], env)
        assert [row["job_id"] for row in dead["dead_letters"]] == [failing]
        assert dead["dead_letters"][0]["reason"]
        # A replay keeps the job id; it fails again for the same reason.
        assert run_json(["dlq", "replay", failing], env)["result"] == "replayed"
        wait_for(lambda: settled(stack, failing), timeout_s=60, what="replayed job settled")
        record = run_json(["status", failing], env)
        assert record["state"] == "failed" and record["attempts"] == 2


def test_review_resend_and_drop(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    faults = {"error_rate": 1.0, "ambiguous_charge_rate": 0.0, "seed": 11}
    env_extra = {"KEY_PREFIX": redis_prefix, "CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl",
                 "RECONCILE_AFTER_S": "0.2", "RECONCILE_INTERVAL_S": "0.2",
                 # every send fails at first: the breaker opens, briefly
                 "BREAKER_OPEN_S": "1", "BREAKER_MAX_OPEN_S": "2",
                 # and the retries that lead to review come within seconds
                 **{k: FAST[k] for k in ("RETRY_INITIAL_BACKOFF_MS", "RETRY_MAX_BACKOFF_MS",
                                         "DURABLE_MIN_BACKOFF_MS", "DURABLE_MAX_BACKOFF_MS")}}  # fmt: skip
    with running_stack(
        redis_url=redis_url,
        env=env_extra,
        sandbox_flags=faults,
        processes=1,
        threads=2,
        log_dir=tmp_path,
    ) as stack:
        env = stack.env
        run_json_together(
            [["send", "email", "--to", f"c{i}@example.com", "--subject", "s", "--html", f"<p>{i}</p>"]
             for i in range(6)], env,
        )  # fmt: skip
        review = Keys(redis_prefix).review
        wait_for(lambda: redis_client.zcard(review) >= 2, timeout_s=60,
                 what="two e-mails held for review")  # fmt: skip
        held = run_json(["review", "list"], env)["review"]
        assert len(held) >= 2
        with stack.sandbox_client() as client:
            client.put("/_sandbox/faults", json={"error_rate": 0.0}).raise_for_status()
        dropped, resent = held[0]["job_id"], held[1]["job_id"]
        assert run_json(["review", "drop", dropped], env)["result"] == "dropped"
        assert run_json(["review", "resend", resent], env)["result"] == "requeued"
        wait_for(lambda: settled(stack, resent), timeout_s=60, what="resent e-mail settled")
        assert run_json(["status", resent], env)["state"] == "sent"
        record = run_json(["status", dropped], env)
        assert record["state"] == "failed" and record["error_class"] == "DroppedAfterReview"
        remaining = {row["job_id"] for row in run_json(["review", "list"], env)["review"]}
        assert dropped not in remaining and resent not in remaining
        assert run_json(["review", "drop", dropped], env, code=1)["error"]


def test_status_and_cancel_of_a_bulk_recipient_before_its_chunk_is_claimed(
    env: dict[str, str],
) -> None:
    from connectus_worker.campaign.options import CampaignOptions
    from connectus_worker.campaign.store import CampaignStore
    from connectus_worker.config import load_settings
    from connectus_worker.producers.campaigns import CampaignProducer
    from connectus_worker.worker.campaigns import CampaignPump

    settings = load_settings(env)
    producer = CampaignProducer(settings)
    rows = [{"dst_number": f"5698765{i:04d}", "name": "x"} for i in range(3)]
    cid = producer.send(rows, CampaignOptions(name="cli", text="Hola {name}")).campaign_id
    store = CampaignStore(producer.redis, Keys(settings.key_prefix),
                          ttl_s=settings.campaign_ttl_s, job_ttl_s=settings.job_ttl_s)  # fmt: skip
    campaign = store.get(cid)
    assert campaign is not None
    pump = CampaignPump(store=store, queue=settings.queue_bulk, max_pending=1000, owner="cli")
    assert pump.step(campaign) == 1  # released; no worker has claimed it, so no record yet
    record = run_json(["status", f"{cid}-1"], env)
    assert (record["state"], record["dst"], record["campaign"]) == ("queued", "569*****001", cid)
    refused = run_json(["cancel", f"{cid}-1"], env, code=1)
    assert refused["result"] == "refused:queued"
    assert run_json(["status", f"{cid}-3"], env, code=1)["error"].startswith("job_id: no job")
