"""``connectus campaign ...`` run as a subprocess, as an operator or a script would.

Each test has its own key prefix on the real Redis. Preflight, options and control
run without Connectus (no credentials: the balance is not checked); the full run
and the balance check use a local stack (the sandbox over HTTP, and workers).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from connectus_worker.campaign.model import CampaignState
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.config import load_settings
from connectus_worker.domain.hashing import content_hash
from connectus_worker.ledger.keys import Keys
from connectus_worker.worker.campaigns import CampaignPump
from devtools.stack import LocalStack
from tests.support.stack_checks import running_stack
from tests.support.waiting import wait_for

CLI = [sys.executable, "-m", "connectus_worker.cli", "campaign"]
TEXT = "Hola {name}"
# Fast durable retries and generous rates, as in the integration tests.
STACK_ENV = {"DURABLE_MIN_BACKOFF_MS": "200", "DURABLE_MAX_BACKOFF_MS": "1000",
             "BROKER_MAINTENANCE_INTERVAL_S": "1", "WORKER_SHUTDOWN_GRACE_S": "10",
             "RATE_SMS_PER_S": "500", "RATE_SMS_BURST": "100"}  # fmt: skip


@pytest.fixture
def env(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> dict[str, str]:
    """No Connectus settings at all: nothing here may reach a real account."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTUS_")}
    return {**clean, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix}


def run(
    args: Sequence[str], env: Mapping[str, str], *, code: int = 0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], env=dict(env), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    return result


def run_json(args: Sequence[str], env: Mapping[str, str], *, code: int = 0) -> dict[str, Any]:
    stdout = run([*args, "--json"], env, code=code).stdout
    assert stdout.count("\n") == 1, stdout  # one JSON object, nothing else
    return dict(json.loads(stdout))


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["dst_number", "name"])
        writer.writerows(rows)
    return path


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"569{87100000 + start + i:08d}" for i in range(n)]


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    """Line 2 valid, 3 a bad number, 4 a missing template field, 5 a duplicate of 2, 6 valid."""
    a, b, c = numbers(3)
    return write_csv(tmp_path / "clients.csv",
                     [[a, "Ana"], ["12345", "Bob"], [b, ""], [a, "Ana otra vez"], [c, "Eva"]])  # fmt: skip


def stored_keys(client: redis.Redis, pattern: str) -> list[str]:
    return sorted(client.scan_iter(pattern))


def test_preflight_reports_every_row_and_refuses_bad_ones(
    env: dict[str, str], mixed_csv: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    plan = run_json(["preflight", str(mixed_csv), "--text", TEXT], env, code=1)
    counts = {k: plan[k] for k in ("rows", "valid", "invalid", "duplicates", "segments", "cost")}
    assert counts == {"rows": 5, "valid": 2, "invalid": 2, "duplicates": 1, "segments": 2,
                      "cost": 2}  # fmt: skip
    assert plan["invalid_rows"] == [
        {"line": 3, "field": "dst_number", "reason": "is too short"},
        {"line": 4, "field": "name", "reason": "is required by the template but empty"},
    ]
    assert plan["duplicate_rows"] == [{"line": 5, "first_line": 2}]
    assert plan["transport"] == "v1_bulk" and plan["balances"] == []
    assert len(plan["refusals"]) == 1 and "--skip-invalid" in plan["refusals"][0]

    skipped = run_json(["preflight", str(mixed_csv), "--text", TEXT, "--skip-invalid"], env)
    assert skipped["refusals"] == [] and skipped["valid"] == 2 and skipped["invalid"] == 2

    # For people: tables on stdout, and why it was refused.
    human = run(["preflight", str(mixed_csv), "--text", TEXT], env, code=1)
    assert "is too short" in human.stdout and "refused:" in human.stdout
    assert "balance not checked" in human.stderr
    assert stored_keys(redis_client, f"{redis_prefix}*") == []  # preflight stores nothing


def test_bad_options_exit_2_and_name_every_field(
    env: dict[str, str], mixed_csv: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    body = run_json(
        ["preflight", str(mixed_csv), "--text", TEXT, "--window", "9-21", "--kind", "fax"],
        env, code=2,
    )  # fmt: skip
    assert {e["name"] for e in body["errors"]} == {"window", "kind"}
    assert "window: must look like 09:00-21:00" in body["error"]
    human = run(["send", str(mixed_csv), "--name", "x", "--text", TEXT, "--transport", "v2"], env,
                code=2)  # fmt: skip
    assert "transport: must be 'v3' or 'v1_bulk'" in human.stderr
    assert stored_keys(redis_client, f"{redis_prefix}*") == []


def test_send_list_status_and_control(
    env: dict[str, str], tmp_path: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    dsts = numbers(3, start=100)
    path = write_csv(tmp_path / "list.csv", [[d, f"C{i}"] for i, d in enumerate(dsts)])
    send = ["send", str(path), "--name", "Promo", "--text", TEXT, "--idempotency-key", "promo-1"]
    accepted = run_json(send, env)
    cid = accepted["campaign_id"]
    assert accepted["created"] is True and accepted["valid"] == 3 and "refusals" not in accepted
    again = run_json(send, env)
    assert (again["campaign_id"], again["created"]) == (cid, False)

    listed = run_json(["list"], env)["campaigns"]
    assert [(c["campaign_id"], c["state"], c["counts"]) for c in listed] == [
        (cid, "scheduled", {"pending": 3})]  # fmt: skip

    # A worker's pump starts it (its deliver_at is now); no worker releases anything here.
    settings = load_settings(env)
    store = CampaignStore(redis_client, Keys(redis_prefix), ttl_s=settings.campaign_ttl_s,
                          job_ttl_s=settings.job_ttl_s)  # fmt: skip
    pump = CampaignPump(store=store, queue=settings.queue_bulk, max_pending=1000, owner="test")
    campaign = store.get(cid)
    assert campaign is not None and pump.step(campaign) == 0
    assert store.get(cid).state is CampaignState.RUNNING  # type: ignore[union-attr]

    status = run_json(["status", cid], env)
    assert (status["state"], status["total"], status["counts"]) == ("running", 3, {"pending": 3})
    assert status["health"]["breaker"]["state"] == "closed"
    assert "sms" in {r["product"] for r in status["health"]["rates"]}

    refused = run_json(["resume", cid], env, code=1)
    assert refused["error"] == f"campaign {cid} is running: can't move it to running"
    paused = run_json(["pause", cid], env)
    assert (paused["previous"], paused["state"]) == ("running", "paused")
    resumed = run_json(["resume", cid], env)
    assert (resumed["previous"], resumed["state"]) == ("paused", "running")
    cancelled = run_json(["cancel", cid], env)
    assert (cancelled["previous"], cancelled["state"]) == ("running", "cancelled")

    out = tmp_path / "report.csv"
    written = run_json(["report", cid, "--csv", str(out)], env)
    assert written == {"campaign_id": cid, "rows": 3, "csv": str(out), "short_links": []}
    with out.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["index"], r["recipient"], r["state"]) for r in rows] == [
        (str(i), d, "cancelled") for i, d in enumerate(dsts)]  # fmt: skip

    missing = tmp_path / "missing.csv"
    gone = run_json(["report", "no-such-campaign", "--csv", str(missing)], env, code=1)
    assert "no-such-campaign" in gone["error"] and not missing.exists()


def test_a_campaign_runs_to_finished_with_real_workers(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    dsts = numbers(4, start=200)
    path = write_csv(tmp_path / "run.csv", [[d, f"C{i}"] for i, d in enumerate(dsts)])
    with running_stack(redis_url=redis_url, env={**STACK_ENV, "KEY_PREFIX": redis_prefix},
                       processes=1, threads=2, log_dir=tmp_path) as stack:  # fmt: skip
        cid = run_json(["send", str(path), "--name", "Run", "--text", TEXT], stack.env)[
            "campaign_id"
        ]
        store = CampaignStore(redis_client, Keys(redis_prefix), ttl_s=3600, job_ttl_s=3600)

        def finished() -> bool:
            campaign = store.get(cid)
            return campaign is not None and campaign.state is CampaignState.FINISHED

        wait_for(finished, timeout_s=45, what="the campaign to finish")
        status = run_json(["status", cid], stack.env)
        assert (status["state"], status["counts"]) == ("finished", {"sent": 4})
        assert status["deliveries"] == 1 and status["eta_s"] == 0
        out = tmp_path / "report.csv"
        assert run_json(["report", cid, "--csv", str(out)], stack.env)["rows"] == 4
        with stack.sandbox_client() as sandbox:
            charges = sandbox.get("/_sandbox/ledger").json()["charges"]
    with out.open(encoding="utf-8") as file:
        report = list(csv.DictReader(file))
    assert [(r["recipient"], r["state"]) for r in report] == [(d, "sent") for d in dsts]
    assert all(r["provider_id"] and r["sent_at"] and r["attempts"] == "1" for r in report)
    # Each recipient charged once, under the provider id the report shows.
    assert sorted((c["dst"], c["provider_id"]) for c in charges) == sorted(
        (r["recipient"], r["provider_id"]) for r in report
    )


def test_a_cost_over_the_sandbox_balance_is_refused_unless_forced(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "costly.csv", [[d, "x"] for d in numbers(3, start=300)])
    with LocalStack(redis_url=redis_url, env={"KEY_PREFIX": redis_prefix}, start_workers=False,
                    log_dir=tmp_path) as stack:  # fmt: skip
        with stack.sandbox_client() as sandbox:
            answer = sandbox.put("/_sandbox/balance",
                                 json={"product": "sms", "amount": 2, "id_country": 1})  # fmt: skip
            answer.raise_for_status()
        send = ["send", str(path), "--name", "Costly", "--text", TEXT]
        refused = run_json(send, stack.env, code=1)
        assert "cost 3 exceeds" in refused["error"] and "--force" in refused["error"]
        assert [b["available"] for b in refused["plan"]["balances"]] == [2]
        assert stored_keys(redis_client, f"{redis_prefix}:campaign*") == []

        forced = run_json([*send, "--force"], stack.env)
        assert forced["created"] is True and forced["balances"][0]["available"] == 2

        unchecked = run_json(["preflight", str(path), "--text", TEXT, "--no-balance"], stack.env)
        assert unchecked["balances"] == [] and unchecked["refusals"] == []

        # WhatsApp: GET /clients's free_whatsapp_balance (0 here) refuses the campaign.
        with stack.sandbox_client() as sandbox:
            sandbox.put("/_sandbox/balance",
                        json={"product": "whatsapp", "amount": 0}).raise_for_status()  # fmt: skip
        wa = ["preflight", str(path), "--text", TEXT, "--kind", "whatsapp", "--src", "56999944837"]
        whatsapp = run_json(wa, stack.env, code=1)
        assert whatsapp["balances"] == [{
            "source": "account's unassigned WhatsApp balance (free_whatsapp_balance)",
            "available": 0}]  # fmt: skip
        assert whatsapp["refusals"] == [
            "cost 3 exceeds account's unassigned WhatsApp balance "
            "(free_whatsapp_balance) (0); use --force to send anyway"
        ]


def test_a_link_is_shortened_once_per_campaign_and_its_clicks_are_reported(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    dsts = numbers(3, start=400)
    path = write_csv(tmp_path / "links.csv", [[d, f"C{i}"] for i, d in enumerate(dsts)])
    url = "https://tienda.example.cl/ofertas/verano?utm_source=sms&utm_campaign=verano-2026"
    text = f"Hola {{name}}: {{link:{url}}}"
    with running_stack(redis_url=redis_url, env={**STACK_ENV, "KEY_PREFIX": redis_prefix},
                       processes=1, threads=2, log_dir=tmp_path) as stack:  # fmt: skip
        plan = run_json(["preflight", str(path), "--text", text, "--no-balance"], stack.env)
        assert plan["segments"] == 3  # "Hola Cn: " + 14 characters each, not the long URL
        cid = run_json(["send", str(path), "--name", "Links", "--text", text], stack.env)[
            "campaign_id"
        ]
        store = CampaignStore(redis_client, Keys(redis_prefix), ttl_s=3600, job_ttl_s=3600)

        def finished() -> bool:
            campaign = store.get(cid)
            return campaign is not None and campaign.state is CampaignState.FINISHED

        wait_for(finished, timeout_s=45, what="the campaign to finish")
        links = run_json(["status", cid], stack.env)["short_links"]
        assert len(links) == 1 and links[0]["url"] == url and links[0]["clicks"] == 0
        short = links[0]["short_link"]
        with stack.sandbox_client() as sandbox:
            for _ in range(2):
                assert sandbox.get(f"/_sandbox/s/{short.rsplit('/', 1)[-1]}").status_code == 302
            charges = sandbox.get("/_sandbox/ledger").json()["charges"]
            auth = ("sandbox", "sandbox-key")
            # One short link for the whole campaign: a second one was never created.
            assert sandbox.get("/api_v3/short_link/2", auth=auth).status_code == 404
        report = run_json(["report", cid, "--csv", str(tmp_path / "r.csv")], stack.env)
        assert report["short_links"][0]["clicks"] == 2
        expected = {content_hash(f"Hola C{i}: {short}") for i in range(3)}
        assert {c["content_sha256"] for c in charges} == expected
