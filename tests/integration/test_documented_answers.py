"""The worker against the sandbox answering exactly as the Connectus documents show.

Real Redis, ``connectus sandbox --answers documented`` and ``connectus worker``
as processes, over loopback HTTP: a send accepted with ``{"status": "ESME_ROK"}``
and no id is ``sent`` at once; its id is looked up afterwards, and a status
webhook that arrived before that reaches the job; a send no listing shows stays
``sent`` and ``connectus status`` says its id is not known. v1 parameters go in
the query string, which the sandbox requires by default.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import Settings, load_settings
from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.service_server import ServiceServer
from devtools.stack import SANDBOX_KEY, SANDBOX_USER, LocalStack
from tests.support.stack_checks import (
    campaign_finished,
    campaign_tools,
    identified,
    ledger,
    numbers,
    settle,
)
from tests.support.waiting import wait_for

SECRET = "it-hook-0123456789abcdef"
NUMBER = "56987654321"
AUTH = (SANDBOX_USER, SANDBOX_KEY)
LOOKUP_SOON = {"RECONCILE_AFTER_S": "0.2", "RECONCILE_INTERVAL_S": "0.3"}


@pytest.fixture
def service(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Iterator[str]:
    """The webhook receiver (``connectus serve``'s app) on a loopback port; its base URL."""
    settings: Settings = load_settings(
        {"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix, "INTAKE_TOKENS": "t" * 20,
         "WEBHOOK_SECRET": SECRET}
    )  # fmt: skip
    with ServiceServer(settings) as running:
        yield running.base_url


def test_an_unnamed_send_is_sent_then_identified_and_its_webhook_status_applied(
    make_stack: Callable[..., LocalStack], service: str
) -> None:
    hook = f"{service}/webhooks/sms-status?token={SECRET}"
    stack = make_stack(sandbox_flags={"answers": "documented", "status_hook_url": hook},
                       env=LOOKUP_SOON)  # fmt: skip
    producer = Producer(stack.settings)
    sms = producer.send_sms(NUMBER, "hola documentado")
    otp = producer.send_otp(NUMBER, "Tu codigo es 908172")
    records = settle(producer, [sms, otp])
    assert {r.state for r in records.values()} == {State.SENT}
    records = identified(producer, [sms, otp])
    charges = {c["provider_id"]: c for c in ledger(stack)}
    for job_id in (sms, otp):
        record = records[job_id]
        assert record.provider_id_lookup == "found" and record.provider_id in charges
    assert charges[records[otp].provider_id]["product"] == "sms" and len(charges) == 2

    # The sandbox posted each status when it happened, before the id was known:
    # kept pending by the service, applied once the lookup indexed the id.
    def delivered() -> bool:
        return all(producer.get_status(j).delivery_status == "ENTREGADO" for j in (sms, otp))

    wait_for(delivered, timeout_s=30, what="ENTREGADO on both jobs")


def test_a_send_no_listing_shows_stays_sent_and_status_says_the_id_is_not_known(
    make_stack: Callable[..., LocalStack],
) -> None:
    env = {"RECONCILE_AFTER_S": "0.5", "RECONCILE_WINDOW_S": "1.5", "RECONCILE_INTERVAL_S": "0.3"}
    stack = make_stack(env=env)  # default answers, switched at run time:
    with stack.sandbox_client() as client:
        switched = client.put("/_sandbox/faults", json={"answers": "documented"})
        assert switched.json()["answers"] == "documented"
    producer = Producer(stack.settings)
    job_id = producer.send_sms(NUMBER, "nadie me lista")
    assert settle(producer, [job_id])[job_id].state is State.SENT
    # Forget every message at Connectus before the first lookup (0.5 s after the send).
    with stack.sandbox_client() as client:
        client.post("/_sandbox/reset", json={"keep_faults": True}).raise_for_status()
    record = wait_for(
        lambda: (r := producer.get_status(job_id)).provider_id_lookup == "not_found" and r,
        timeout_s=30, what="the lookup to give up",
    )  # fmt: skip
    assert (record.state, record.provider_id) == (State.SENT, None)

    def status(*flags: str) -> str:
        done = subprocess.run([sys.executable, "-m", "connectus_worker.cli", "status", job_id, *flags],
                              env={**stack.env, "COLUMNS": "200"}, capture_output=True,
                              text=True, timeout=60,
                              check=True)  # fmt: skip
        return done.stdout

    shown = json.loads(status("--json"))
    assert (shown["state"], shown["provider_id"], shown["provider_id_lookup"]) == (
        "sent", None, "not_found",
    )  # fmt: skip
    table = status()
    assert "not known" in table and "no listing showed it" in table


def test_a_v1_bulk_campaign_goes_in_query_strings_of_url_size(
    make_stack: Callable[..., LocalStack], tmp_path: Path
) -> None:
    # The sandbox takes v1 parameters only in the query string (its default):
    # a 300-recipient chunk does not fit one URL and goes as several calls.
    env = {"CAMPAIGN_MAX_PENDING": "1000", "RATE_SMS_PER_S": "2000", "RATE_SMS_BURST": "500"}
    stack = make_stack(env=env, sandbox_flags={"answers": "documented"})
    producer, control = campaign_tools(stack)
    dsts = numbers(300, start=70_000)
    rows: list[dict[str, Any]] = [{"dst_number": d, "name": f"Cliente {i}"}
                                  for i, d in enumerate(dsts)]  # fmt: skip
    cid = producer.send(rows, CampaignOptions(name="query", text="Hola {name}")).campaign_id
    wait_for(lambda: campaign_finished(control, cid), timeout_s=60, what="the campaign to finish")
    charged = Counter(str(c["dst"]) for c in ledger(stack) if c["product"] == "sms")
    assert set(charged) == set(dsts) and set(charged.values()) == {1}
    with stack.sandbox_client() as client:
        calls = client.get("/_sandbox/stats").json()["requests"]["POST /api_v1/send_sms_bulk"]
    assert calls.get("200", 0) > 1 and set(calls) == {"200"}  # several calls, none refused
    # What the document does not show is refused: parameters in a body.
    form = {"messages": json.dumps([{"dst_number": 56987000001, "sms_content": "x"}]),
            "delivery_name": "d"}  # fmt: skip
    with stack.sandbox_client() as client:
        refused = client.post("/api_v1/send_sms_bulk", data=form, auth=AUTH)
    assert refused.status_code == 400 and refused.json()["field"] == "body"
