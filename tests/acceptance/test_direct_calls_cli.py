"""``connectus account``, ``connectus v1 ...`` and ``connectus deliveries ...`` against the
sandbox over HTTP: each documented call they make reaches Connectus (the sandbox's ledger
and admin API show it), bad input is named and calls nothing, and no secret is printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from devtools.stack import LocalStack
from tests.support.cli import run, run_json
from tests.support.waiting import wait_for

CHILE = "56987654321"


def _charges(stack: LocalStack) -> list[dict[str, Any]]:
    with stack.sandbox_client() as sandbox:
        answer = sandbox.get("/_sandbox/ledger", params={"limit": 1000})
        answer.raise_for_status()
        return list(answer.json()["charges"])


def test_account_v1_and_deliveries_from_the_cli(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with LocalStack(redis_url=redis_url, env={"KEY_PREFIX": redis_prefix}, start_workers=False,
                    processes=1, threads=2, log_dir=tmp_path) as stack:  # fmt: skip
        env = stack.env
        hook = "https://hooks.example.cl/webhooks/sms-status?token=s3cr3t-token-value"
        with stack.sandbox_client() as sandbox:
            sandbox.put("/_sandbox/account", json={
                "sms_status_hook_url": hook,
                "sms_incoming_hook_url": "https://ops:hunter22@hooks.example.cl/webhooks/in",
            }).raise_for_status()  # fmt: skip

        # GET /api_v3/account: the account and its webhook URLs, secrets masked.
        account = run_json(["account"], env)
        assert account["id_account"] == env["CONNECTUS_API_USER"]
        assert account["sms_status_hook_url"] == (
            "https://hooks.example.cl/webhooks/sms-status?token=***"
        )
        assert account["sms_incoming_hook_url"] == "https://ops:***@hooks.example.cl/webhooks/in"
        human = run(["account"], env)
        assert human.returncode == 0 and "hooks.example.cl" in human.stdout
        for printed in (human.stdout + human.stderr, str(account)):
            assert "s3cr3t" not in printed and "hunter22" not in printed
            assert env["CONNECTUS_API_KEY"] not in printed

        # v1 send_sms, then check_sms_status of the id it answered.
        sms = run_json(["v1", "send-sms", "--to", "+56 9 8765 4321", "--text", "Hola v1"], env)
        assert sms["id_sms"]
        status = run_json(["v1", "sms-status", sms["id_sms"]], env)
        assert status["provider_id"] == sms["id_sms"] and status["status"]
        charged = [c for c in _charges(stack) if c["provider_id"] == sms["id_sms"]]
        assert len(charged) == 1 and charged[0]["dst"] == CHILE

        # v1 send_email, check_email_status_events, and send_email_bulk (one delivery).
        mail = run_json(["v1", "send-email", "--to", "ana@example.cl", "--html", "<p>Hola</p>",
                         "--subject", "Prueba", "--from", "ops@example.cl"], env)  # fmt: skip
        assert mail["id_email"]
        with stack.sandbox_client() as sandbox:
            sandbox.post(
                "/_sandbox/email_event", json={"id": mail["id_email"], "event": "ABIERTO"}
            ).raise_for_status()
        events = run_json(["v1", "email-status", mail["id_email"]], env)
        assert events["id"] == mail["id_email"] and events["status"]
        assert "ABIERTO" in [e["event"] for e in events["events"]]
        bulk = run_json(["v1", "send-email-bulk", "--to", "a@example.cl", "--to", "b@example.cl",
                         "--html", "<p>Hola</p>", "--from", "ops@example.cl"], env)  # fmt: skip
        assert bulk["id_delivery"] and len(bulk["items"]) == 2
        assert all(item["provider_id"] for item in bulk["items"])
        in_bulk = [c for c in _charges(stack) if c["id_delivery"] == bulk["id_delivery"]]
        assert len(in_bulk) == 2

        # POST/GET/PATCH /api_v3/deliveries.
        made = run_json(["deliveries", "create", "--name", "Prueba", "--at",
                         "2099-01-01 10:00:00"], env)  # fmt: skip
        assert made["id"] and made["name"] == "Prueba"
        moved = run_json(["deliveries", "update", made["id"], "--name", "Otra"], env)
        assert moved["name"] == "Otra"
        assert run_json(["deliveries", "show", made["id"]], env)["name"] == "Otra"

        # Bad input: named, exit 2, nothing sent.
        before = len(_charges(stack))
        bad_to = run_json(["v1", "send-sms", "--to", "abc", "--text", "x"], env, code=2)
        assert bad_to["error"].startswith("--to:")
        bad_mail = run_json(["v1", "send-email", "--to", "nope", "--html", "x", "--from",
                             "ops@example.cl"], env, code=2)  # fmt: skip
        assert bad_mail["error"].startswith("--to:")
        bad_at = run_json(["deliveries", "create", "--name", "x", "--at", "tomorrow"], env, code=2)
        assert "deliver_at" in bad_at["error"]
        assert run_json(["deliveries", "update", made["id"]], env, code=2)["error"]
        assert run_json(["v1", "sms-status", "999999999"], env, code=1)["error"]
        assert len(_charges(stack)) == before


def test_campaign_send_with_a_connectus_delivery_from_the_cli(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    dsts = [f"569{87200000 + i:08d}" for i in range(3)]
    recipients = tmp_path / "clientes.csv"
    recipients.write_text("dst_number,name\n" + "".join(f"{d},Ana\n" for d in dsts))
    with LocalStack(redis_url=redis_url, env={"KEY_PREFIX": redis_prefix}, start_workers=False,
                    processes=1, threads=2, log_dir=tmp_path) as stack:  # fmt: skip
        env = stack.env
        send = ["campaign", "send", str(recipients), "--name", "Entregas", "--text", "Hola {name}",
                "--no-balance"]  # fmt: skip
        refused = run_json([*send, "--transport", "v1_bulk", "--no-connectus-delivery"], env,
                           code=2)  # fmt: skip
        assert "connectus_delivery" in refused["error"]
        accepted = run_json([*send, "--transport", "v3", "--connectus-delivery"], env)
        cid = accepted["campaign_id"]

        stack.start_worker_supervisor()
        status = wait_for(
            lambda: s if (s := run_json(["campaign", "status", cid], env))["state"] == "finished"
            else None, timeout_s=60, interval_s=1.0, what="the campaign to finish")  # fmt: skip
        assert status["deliveries"] == 1
        charges = [c for c in _charges(stack) if c["dst"] in dsts]
        assert sorted(c["dst"] for c in charges) == dsts
        with stack.sandbox_client() as sandbox:
            auth = (env["CONNECTUS_API_USER"], env["CONNECTUS_API_KEY"])
            ids = {c["id_delivery"] for c in charges}
            names = {sandbox.get(f"/api_v3/deliveries/{i}", auth=auth).json()["name"] for i in ids}
        assert "Entregas #0" in names
