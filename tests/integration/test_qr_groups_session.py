"""WhatsApp QR groups and the QR session, end to end: real Redis, the sandbox over HTTP
and worker processes. Judged by the job records, the sandbox's charge ledger and its
group listing, and the breaker's shared state in Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from connectus_worker.redis import connect
from connectus_worker.worker.breaker import CircuitBreaker
from devtools.stack import LocalStack
from tests.support.stack_checks import (
    FAST_RECONCILE,
    LOOKUP_SOON,
    deferred,
    ledger,
    open_scopes,
    settle,
    settle_final,
)
from tests.support.waiting import wait_for

AUTH = ("sandbox", "sandbox-key")
CHILE = "+56 9 8765 4321"
GROUP = "Ventas Sur"


def create_group(stack: LocalStack, name: str = GROUP) -> None:
    with stack.sandbox_client() as client:
        answer = client.post("/create-group", auth=AUTH,
                             json={"name": name, "numbers": ["56987654321"]})  # fmt: skip
        answer.raise_for_status()


def group_listing(stack: LocalStack, name: str = GROUP) -> list[dict[str, Any]]:
    with stack.sandbox_client() as client:
        answer = client.post("/get-last-group-messages", auth=AUTH, json={"groupName": name})
        return list(answer.json()["messages"])


def set_session(stack: LocalStack, status: str) -> None:
    with stack.sandbox_client() as client:
        client.put("/_sandbox/qr_session", json={"status": status}).raise_for_status()


@pytest.mark.parametrize("answers", ["chosen", "documented"])
def test_a_group_send_goes_through_the_worker_and_is_charged_once(
    make_stack: Callable[..., LocalStack], answers: str
) -> None:
    stack = make_stack(sandbox_flags={"answers": answers}, env=LOOKUP_SOON)
    producer = Producer(stack.settings)
    create_group(stack)
    job_id = producer.send_whatsapp_qr_group(GROUP, "Reunión a las 10", idempotency_key="k-1")
    again = producer.send_whatsapp_qr_group(GROUP, "Reunión a las 10", idempotency_key="k-1")
    unknown_group = producer.send_whatsapp_qr_group("No existe", "Hola")
    records = settle(producer, [job_id, unknown_group])
    assert again == job_id
    [listed] = group_listing(stack)
    charges = [c for c in ledger(stack) if c["product"] == "whatsapp_qr"]
    assert [c["provider_id"] for c in charges] == [listed["message_id"]]  # charged once
    assert records[job_id].state is State.SENT
    if answers == "documented":  # the answer named no message: looked up in the listing
        found = wait_for(lambda: producer.get_status(job_id).provider_id, timeout_s=30,
                         what="the group message's id looked up")  # fmt: skip
        assert found == listed["message_id"]
        assert producer.get_status(job_id).provider_id_lookup == "found"
    else:
        assert records[job_id].provider_id == listed["message_id"]
    failed = records[unknown_group]
    assert (failed.state, failed.error_class) == (State.FAILED, "NotFound")


def test_a_disconnected_session_pauses_qr_sends_while_sms_keep_going(
    make_stack: Callable[..., LocalStack],
) -> None:
    # The pause outlasts the test unless GET /status ends it: no half-open probe.
    stack = make_stack(env={"BREAKER_OPEN_S": "60", "BREAKER_MAX_OPEN_S": "120",
                            "QR_STATUS_INTERVAL_S": "0.3"})  # fmt: skip
    producer = Producer(stack.settings)
    breaker = CircuitBreaker.from_settings(stack.settings, connect(stack.settings))
    create_group(stack)
    set_session(stack, "DISCONNECTED")
    scope = wait_for(lambda: open_scopes(breaker).get("qr_session"), timeout_s=30,
                     what="qr_session opened by the status watch")  # fmt: skip
    assert scope["reason"] == "GET /status: DISCONNECTED"

    held = [producer.send_whatsapp_qr_group(GROUP, "Hola equipo"),
            producer.send_whatsapp_qr(CHILE, "Hola QR")]  # fmt: skip
    sms = producer.send_sms(CHILE, "Hola SMS")
    assert settle(producer, [sms])[sms].state is State.SENT
    for job_id in held:
        wait_for(lambda j=job_id: deferred(producer, j), timeout_s=15, what="a QR send deferred")
    assert [c["product"] for c in ledger(stack)] == ["sms"]
    assert set(open_scopes(breaker)) == {"qr_session"}

    set_session(stack, "CONNECTED")  # paired again: the watch closes the pause
    records = settle(producer, held, timeout_s=30)
    assert {records[j].state for j in held} == {State.SENT}
    assert sorted(c["product"] for c in ledger(stack)) == ["sms", "whatsapp_qr", "whatsapp_qr"]
    assert open_scopes(breaker) == {}
    assert producer.redis.zcard(producer.store.keys.dead_letters) == 0


def test_a_send_refused_for_the_session_pauses_not_fails(
    make_stack: Callable[..., LocalStack],
) -> None:
    # No status watch: the refused send itself opens the pause; probes end it.
    stack = make_stack(env={"QR_STATUS_INTERVAL_S": "0", "RETRY_ATTEMPTS": "1"})
    producer = Producer(stack.settings)
    breaker = CircuitBreaker.from_settings(stack.settings, connect(stack.settings))
    create_group(stack)
    set_session(stack, "DISCONNECTED")
    job_id = producer.send_whatsapp_qr_group(GROUP, "Hola equipo")
    scope = wait_for(lambda: open_scopes(breaker).get("qr_session"), timeout_s=30,
                     what="qr_session opened by the refused send")  # fmt: skip
    assert scope["reason"].startswith("SessionDisconnected")
    # The worker tells the breaker, then records the job's outcome: poll for the latter.
    record = wait_for(lambda: (r := producer.get_status(job_id)).state is not State.SENDING and r,
                      timeout_s=10, what="the refused send recorded")  # fmt: skip
    assert record.state in (State.RETRYING, State.QUEUED)
    assert record.error_class == "SessionDisconnected"
    assert ledger(stack) == []

    set_session(stack, "CONNECTED")
    assert settle(producer, [job_id], timeout_s=30)[job_id].state is State.SENT
    assert len(group_listing(stack)) == 1
    wait_for(lambda: "qr_session" not in open_scopes(breaker), timeout_s=15,
             what="the probe closed qr_session")  # fmt: skip


def test_an_ambiguous_group_send_is_found_in_the_group_listing_not_resent(
    make_stack: Callable[..., LocalStack],
) -> None:
    # Every send is accepted and charged, then its answer is cut mid-response.
    stack = make_stack(sandbox_flags={"drop_rate": 1.0}, env=FAST_RECONCILE)
    producer = Producer(stack.settings)
    create_group(stack)  # not a send: never faulted
    job_id = producer.send_whatsapp_qr_group(GROUP, "Hola equipo")
    record = settle_final(producer, [job_id])[job_id]
    [listed] = group_listing(stack)
    assert (record.state, record.provider_id) == (State.SENT, listed["message_id"])
    assert [c["provider_id"] for c in ledger(stack)] == [listed["message_id"]]  # once
