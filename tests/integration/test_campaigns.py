"""Campaigns end to end: real Redis, the sandbox over HTTP, worker processes.

Each recipient's charge is checked in the sandbox's own ledger: exactly
once for everyone sent, never for anyone cancelled or not yet due.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectus_worker.campaign.model import CampaignState, Transport
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.domain.models import Kind
from devtools.stack import LocalStack
from tests.support.stack_checks import (
    CAMPAIGN_ENV,
    campaign_finished,
    campaign_state,
    campaign_tools,
    charge_count,
    charged_per_dst,
    ledger,
    numbers,
)
from tests.support.waiting import wait_for


def write_csv(path: Path, dsts: list[str]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["dst_number", "name"])
        for i, dst in enumerate(dsts):
            writer.writerow([dst, f"Cliente {i}"])
    return path


def test_a_bulk_campaign_sends_everyone_once_with_a_report(
    make_stack: Callable[..., LocalStack], tmp_path: Path
) -> None:
    stack = make_stack(env=CAMPAIGN_ENV, threads=4)
    producer, control = campaign_tools(stack)
    dsts = numbers(2_500)
    # A duplicate and an invalid row: reported, skipped with skip_invalid.
    rows: list[dict[str, Any]] = [{"dst_number": d, "name": f"C{i}"} for i, d in enumerate(dsts)]
    # An Argentine mobile is a valid number, but v1 takes Chilean mobiles only.
    rows += [
        {"dst_number": dsts[0], "name": "again"},
        {"dst_number": "123", "name": "bad"},
        {"dst_number": "5491123456789", "name": "ar"},
    ]
    options = CampaignOptions(name="bulk", text="Hola {name}", skip_invalid=True)
    accepted = producer.send(rows, options)
    assert accepted.plan.report.valid == 2_500
    assert accepted.plan.report.duplicates == 1
    invalid = accepted.plan.report.invalid
    assert [i.field for i in invalid] == ["dst_number", "dst_number"]
    assert "Chilean mobiles" in invalid[1].reason
    assert accepted.plan.transport is Transport.V1_BULK
    cid = accepted.campaign_id
    wait_for(lambda: campaign_finished(control, cid), timeout_s=120, what="the campaign to finish")

    charges = charged_per_dst(stack)
    assert set(charges) == set(dsts) and set(charges.values()) == {1}
    status = control.status(cid)
    assert status.counts == {"sent": 2_500} and status.deliveries == 3
    out = io.StringIO()
    assert control.write_report(cid, out) == 2_500
    report = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert {r["state"] for r in report} == {"sent"}
    assert all(r["provider_id"] for r in report)
    assert [r["recipient"] for r in report] == dsts


def test_a_v3_campaign_sends_each_whatsapp_once(campaign_stack: LocalStack) -> None:
    stack = campaign_stack
    producer, control = campaign_tools(stack)
    dsts = numbers(40, start=5_000)
    options = CampaignOptions(name="wa", kind=Kind.WHATSAPP, text="Hola {name}",
                              src="56999944837")  # fmt: skip
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    wait_for(lambda: campaign_finished(control, cid), timeout_s=60, what="the campaign to finish")
    wa = Counter(str(c["dst"]) for c in ledger(stack)
                 if c["product"] == "whatsapp" and str(c["dst"]) in dsts)  # fmt: skip
    assert set(wa) == set(dsts) and set(wa.values()) == {1}


def test_an_email_campaign_sends_each_address_once(campaign_stack: LocalStack) -> None:
    stack = campaign_stack
    producer, control = campaign_tools(stack)
    rows = [{"dst_email": f"cliente{i}@example.com", "name": f"C{i}"} for i in range(30)]
    rows.append({"dst_email": "Cliente0@EXAMPLE.com", "name": "dup"})  # the same address
    options = CampaignOptions(name="mail", kind=Kind.EMAIL, text="<p>Hola {name}</p>",
                              subject="Hola {name}", src="contacto@empresa.cl")  # fmt: skip
    accepted = producer.send(rows, options)
    assert accepted.plan.report.duplicates == 1 and accepted.plan.transport is Transport.V3
    wait_for(
        lambda: campaign_finished(control, accepted.campaign_id), timeout_s=60, what="finished"
    )
    mail = Counter(str(c["dst"]).lower() for c in ledger(stack) if c["product"] == "email")
    assert len(mail) == 30 and set(mail.values()) == {1}


def test_nothing_is_sent_before_deliver_at_and_cancel_before_sends_nothing(
    campaign_stack: LocalStack,
) -> None:
    stack = campaign_stack
    producer, control = campaign_tools(stack)
    at = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    rows = [{"dst_number": d, "name": "x"} for d in numbers(30, start=9_000)]
    later = producer.send(rows, CampaignOptions(name="later", text="Hola {name}", deliver_at=at))
    never = producer.send(
        [{"dst_number": d, "name": "x"} for d in numbers(30, start=9_100)],
        CampaignOptions(name="never", text="Hola {name}", deliver_at=at),
    )
    assert campaign_state(control, later.campaign_id) is CampaignState.SCHEDULED
    control.cancel(never.campaign_id)
    ours = {r["dst_number"] for r in rows} | set(numbers(30, start=9_100))
    assert not set(charged_per_dst(stack)) & ours
    wait_for(
        lambda: campaign_finished(control, later.campaign_id), timeout_s=60, what="the later one"
    )
    started = control.get(later.campaign_id).started_ms
    assert started is not None and started >= int(datetime.fromisoformat(at).timestamp() * 1000)
    charges = charged_per_dst(stack)
    assert set(charges) & ours == {r["dst_number"] for r in rows}
    assert {charges[r["dst_number"]] for r in rows} == {1}


def test_pause_parks_and_resume_finishes_without_duplicates(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(env=CAMPAIGN_ENV, sandbox_flags={"latency_ms": 200}, threads=2)
    producer, control = campaign_tools(stack)
    dsts = numbers(60, start=20_000)
    options = CampaignOptions(name="pausable", text="Hola {name}", transport=Transport.V3)
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    wait_for(lambda: charge_count(stack) >= 5, timeout_s=30, what="some sends")
    control.pause(cid)
    # In-flight sends finish; then nothing moves while paused.
    wait_for(lambda: control.status(cid).counts.get("sending", 0) == 0, timeout_s=30,
             what="in-flight sends to finish")  # fmt: skip
    wait_for(lambda: control.status(cid).counts.get("queued", 0) == control.status(cid).parked,
             timeout_s=30, what="every queued message to be parked")  # fmt: skip
    paused_charges = len(ledger(stack))
    assert paused_charges < 60
    assert control.status(cid).counts.get("sending", 0) == 0
    control.resume(cid)
    wait_for(lambda: campaign_finished(control, cid), timeout_s=60, what="the campaign to finish")
    charges = charged_per_dst(stack)
    assert set(charges) == set(dsts) and set(charges.values()) == {1}


def test_cancel_mid_way_stops_every_worker(make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack(env=CAMPAIGN_ENV, sandbox_flags={"latency_ms": 200}, processes=2,
                       threads=2)  # fmt: skip
    producer, control = campaign_tools(stack)
    dsts = numbers(200, start=30_000)
    options = CampaignOptions(name="cancel", text="Hola {name}", transport=Transport.V3)
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    wait_for(lambda: charge_count(stack) >= 5, timeout_s=30, what="some sends")
    control.cancel(cid)
    # Within seconds nothing is sending any more, and the rest is cancelled.
    wait_for(lambda: control.status(cid).counts.get("sending", 0) == 0
             and control.status(cid).counts.get("queued", 0) == 0, timeout_s=15,
             what="every pod to stop")  # fmt: skip
    sent = control.status(cid).counts.get("sent", 0)
    assert sent < 200 and len(ledger(stack)) == sent
    assert set(charged_per_dst(stack).values()) == {1}


def test_a_campaign_past_its_max_lateness_waits_for_resume(campaign_stack: LocalStack) -> None:
    stack = campaign_stack
    producer, control = campaign_tools(stack)
    at = (datetime.now(UTC) - timedelta(seconds=120)).isoformat()
    options = CampaignOptions(name="late", text="Hola {name}", deliver_at=at, max_lateness_s=60)
    rows = [{"dst_number": d, "name": "x"} for d in numbers(10, start=40_000)]
    cid = producer.send(rows, options).campaign_id
    wait_for(lambda: campaign_state(control, cid) is CampaignState.LATE, timeout_s=15, what="late")
    assert "late by" in (control.get(cid).paused_reason or "")
    ours = {r["dst_number"] for r in rows}
    assert not set(charged_per_dst(stack)) & ours
    control.resume(cid)
    wait_for(lambda: campaign_finished(control, cid), timeout_s=60, what="the campaign to finish")
    charges = charged_per_dst(stack)
    assert set(charges) & ours == ours and {charges[d] for d in ours} == {1}


def test_a_closed_window_holds_the_campaign(campaign_stack: LocalStack) -> None:
    stack = campaign_stack
    producer, control = campaign_tools(stack)
    local = datetime.now(UTC).astimezone(ZoneInfo("America/Santiago"))
    start = (local + timedelta(hours=2)).strftime("%H:00")
    end = (local + timedelta(hours=3)).strftime("%H:00")
    options = CampaignOptions(name="window", text="Hola {name}", window=f"{start}-{end}")
    rows = [{"dst_number": d, "name": "x"} for d in numbers(10, start=50_000)]
    cid = producer.send(rows, options).campaign_id
    wait_for(lambda: campaign_state(control, cid) is CampaignState.WINDOW, timeout_s=15,
             what="the campaign to wait for its window")  # fmt: skip
    assert not set(charged_per_dst(stack)) & {r["dst_number"] for r in rows}


@pytest.mark.parametrize(
    ("transport", "n", "answers"),
    [(Transport.V1_BULK, 1_200, "chosen"), (Transport.V3, 60, "chosen"),
     (Transport.V3, 60, "documented")],
)  # fmt: skip
def test_delivery_statuses_reach_the_report_by_polling(
    make_stack: Callable[..., LocalStack], transport: Transport, n: int, answers: str
) -> None:
    # No webhook receiver runs here: every status comes from polling Connectus
    # (check_delivery_status per bulk chunk, GET /sms/:id per v3 message). With
    # documented answers the v3 sends name no id: each is looked up first.
    env = {**CAMPAIGN_ENV, "CAMPAIGN_STATUS_POLL_AFTER_S": "1", "RECONCILE_AFTER_S": "0.2",
           "RECONCILE_INTERVAL_S": "0.3"}  # fmt: skip
    stack = make_stack(env=env, sandbox_flags={"undeliverable_rate": 0.3, "answers": answers})
    producer, control = campaign_tools(stack)
    dsts = numbers(n, start=90_000)
    rows = [{"dst_number": d, "name": "x"} for d in dsts]
    options = CampaignOptions(name="statuses", text="Hola {name}", transport=transport)
    cid = producer.send(rows, options).campaign_id
    wait_for(lambda: campaign_finished(control, cid), timeout_s=60, what="the campaign to finish")

    def final_statuses() -> Counter[str] | None:
        seen = Counter(r["delivery_status"] for r in control.report_rows(cid))
        return seen if set(seen) <= {"ENTREGADO", "NO_ENTREGABLE"} else None

    seen = wait_for(final_statuses, timeout_s=60, interval_s=0.5, what="every final status")
    assert seen["ENTREGADO"] > 0 and seen["NO_ENTREGABLE"] > 0
    assert sum(seen.values()) == n
    report = list(control.report_rows(cid))
    assert all(r["provider_id"] for r in report) and len({r["provider_id"] for r in report}) == n
