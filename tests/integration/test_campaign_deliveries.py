"""v3 campaigns in Connectus deliveries (``connectus_delivery``): real Redis, the sandbox
over HTTP, a worker process.

The sandbox does what the documents say: a delivery executes at its ``deliver_at`` and
then refuses new messages with 400 "Delivery already executed". The rate here spreads
the chunk past the delivery's lead, so both paths run: the first messages join the
chunk's delivery, the later ones are refused (not charged) and sent without it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from connectus_worker.campaign.model import Transport
from connectus_worker.campaign.options import CampaignOptions
from devtools.stack import LocalStack
from tests.support.stack_checks import campaign_finished as finished
from tests.support.stack_checks import campaign_tools as tools
from tests.support.stack_checks import ledger, numbers
from tests.support.waiting import wait_for

ENV = {"CAMPAIGN_MAX_PENDING": "1000", "RATE_SMS_PER_S": "10", "RATE_SMS_BURST": "5",
       "CAMPAIGN_DELIVERY_LEAD_S": "2"}  # fmt: skip


def _stats(stack: LocalStack) -> dict[str, Any]:
    with stack.sandbox_client() as sandbox:
        answer = sandbox.get("/_sandbox/stats")
        answer.raise_for_status()
        return dict(answer.json())


def test_a_v3_campaign_chunk_goes_in_its_own_delivery_and_late_sends_go_without(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(env=ENV)
    producer, control = tools(stack)
    dsts = numbers(50, start=7_000)
    options = CampaignOptions(name="entregas", text="Hola {name}", transport=Transport.V3,
                              connectus_delivery=True)  # fmt: skip
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    wait_for(lambda: finished(control, cid), timeout_s=60, what="the campaign to finish")

    charges = [c for c in ledger(stack) if c["product"] == "sms" and c["dst"] in set(dsts)]
    assert Counter(c["dst"] for c in charges) == Counter(dsts)  # each exactly once
    status = control.status(cid)
    assert status.deliveries == 1
    (id_delivery,) = control.store.deliveries(cid).values()
    in_delivery = [c for c in charges if c["id_delivery"] == id_delivery]
    # 50 SMS at 10/s take ~5 s; the delivery executed after 2 s.
    assert 1 <= len(in_delivery) < len(dsts)
    refused = _stats(stack)["requests"].get("POST /api_v3/sms/send_individual", {}).get("400", 0)
    assert refused == len(dsts) - len(in_delivery)
    with stack.sandbox_client() as sandbox:
        auth = (stack.env["CONNECTUS_API_USER"], stack.env["CONNECTUS_API_KEY"])
        delivery = sandbox.get(f"/api_v3/deliveries/{id_delivery}", auth=auth).json()
    assert delivery["name"] == "entregas #0" and delivery["status"] == "EJECUTADO"
    assert delivery["messages"] == len(in_delivery)


def test_without_the_option_a_v3_campaign_makes_no_delivery(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(env=ENV)
    producer, control = tools(stack)
    dsts = numbers(5, start=7_100)
    options = CampaignOptions(name="sin", text="Hola {name}", transport=Transport.V3)
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    wait_for(lambda: finished(control, cid), timeout_s=60, what="the campaign to finish")
    assert control.status(cid).deliveries == 0
    assert "POST /api_v3/deliveries" not in _stats(stack)["requests"]
    charged = Counter(c["dst"] for c in ledger(stack) if c["dst"] in set(dsts))
    assert charged == Counter(dsts)


def test_a_chunk_in_its_delivery_gets_its_statuses_from_one_delivery_info(
    make_stack: Callable[..., LocalStack],
) -> None:
    # No webhook receiver runs here: every status comes from polling. The lead outlasts
    # the chunk's sends, so every message joins the delivery.
    env = {"CAMPAIGN_MAX_PENDING": "1000", "RATE_SMS_PER_S": "2000", "RATE_SMS_BURST": "500",
           "CAMPAIGN_DELIVERY_LEAD_S": "2", "CAMPAIGN_STATUS_POLL_AFTER_S": "1"}  # fmt: skip
    stack = make_stack(env=env, sandbox_flags={"undeliverable_rate": 0.3})
    producer, control = tools(stack)
    dsts = numbers(30, start=7_200)
    options = CampaignOptions(name="estados", text="Hola {name}", transport=Transport.V3,
                              connectus_delivery=True)  # fmt: skip
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    wait_for(lambda: finished(control, cid), timeout_s=60, what="the campaign to finish")

    def final_statuses() -> Counter[str] | None:
        seen = Counter(r["delivery_status"] for r in control.report_rows(cid))
        return seen if set(seen) <= {"ENTREGADO", "NO_ENTREGABLE"} else None

    seen = wait_for(final_statuses, timeout_s=60, interval_s=0.5, what="every final status")
    assert seen["ENTREGADO"] > 0 and seen["NO_ENTREGABLE"] > 0 and sum(seen.values()) == 30
    requests = _stats(stack)["requests"]
    assert requests.get("GET /api_v3/sms/delivery_info", {}).get("200", 0) >= 1
    assert "GET /api_v3/sms/{id}" not in requests  # no per-message poll
