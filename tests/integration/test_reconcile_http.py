"""Reconciliation end to end: ambiguous sends settled by asking the sandbox, over real processes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.stack_checks import (
    FAST_RECONCILE,
    NUMBER,
    job_states,
    ledger,
    set_faults,
    settle_final,
)
from tests.support.waiting import wait_for


def test_dropped_answers_are_found_at_connectus_and_marked_sent(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(sandbox_flags={"drop_rate": 1.0}, env=FAST_RECONCILE)
    producer = Producer(stack.settings)
    job_ids = [producer.send_sms(NUMBER, f"caido {i}") for i in range(5)]
    job_ids.append(producer.send_whatsapp(NUMBER, "caido wa", src_number="56999944837"))
    job_ids.append(producer.send_whatsapp_qr(NUMBER, "caido qr"))
    records = settle_final(producer, job_ids)
    assert {r.state for r in records.values()} == {State.SENT}
    charges = ledger(stack)
    assert sorted(Counter(c["content_sha256"] for c in charges).values()) == [1] * 7
    assert {r.provider_id for r in records.values()} == {c["provider_id"] for c in charges}


def test_ambiguous_failures_never_received_are_sent_again_once(
    make_stack: Callable[..., LocalStack],
) -> None:
    # 500/504 that did NOT charge: Connectus never got these messages.
    faults = {"error_rate": 1.0, "ambiguous_charge_rate": 0.0, "seed": 5}
    stack = make_stack(sandbox_flags=faults, env=FAST_RECONCILE)
    producer = Producer(stack.settings)
    job_ids = [producer.send_sms(NUMBER, f"reintento {i}") for i in range(8)]
    wait_for(
        lambda: job_states(producer, job_ids)[State.UNKNOWN] >= 2,
        timeout_s=30,
        what="some jobs unknown",
    )
    set_faults(stack, error_rate=0.0)
    records = settle_final(producer, job_ids)
    assert {r.state for r in records.values()} == {State.SENT}
    charges = ledger(stack)
    assert sorted(Counter(c["content_sha256"] for c in charges).values()) == [1] * 8
    reconciled = [r for r in records.values() if r.attempts > 1]
    assert reconciled  # at least the unknown ones went round again
