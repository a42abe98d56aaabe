"""End to end: producer -> Redis -> supervised worker processes -> sandbox over HTTP.

Each test starts its own stack (real Redis, ``connectus sandbox`` and
``connectus worker`` as subprocesses) and judges by the job records and by
the sandbox's charge ledger, never by the worker's own say-so. The test of
every kind and the fault tests run against both of the sandbox's answer modes: ``chosen`` (send answers carry ids) and ``documented`` (exactly
the collection's answers: ``{"status": "ESME_ROK"}``, no id, so each id is
looked up after the send).
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectus_worker.domain.hashing import content_hash
from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.stack_checks import LOOKUP_SOON, NUMBER, child_pids, identified, ledger, settle
from tests.support.waiting import wait_for

# Provider ids looked up soon after the send (documented answers name none).
ANSWERS = ("chosen", "documented")


@pytest.fixture(params=ANSWERS)
def answers(request: pytest.FixtureRequest) -> str:
    """The sandbox's answer mode for this run of the test."""
    return str(request.param)


def test_every_kind_reaches_the_sandbox_and_is_recorded(
    make_stack: Callable[..., LocalStack], answers: str
) -> None:
    stack = make_stack(sandbox_flags={"answers": answers}, env=LOOKUP_SOON)
    producer = Producer(stack.settings)
    otp_text = "Tu codigo es 771234"
    jobs = {
        "sms": producer.send_sms(NUMBER, "Hola desde el worker"),
        "otp": producer.send_otp(NUMBER, otp_text),
        "email": producer.send_email(
            "ana@example.com", "Hola", "<p>Hola</p>", src_email="contacto@empresa.cl"
        ),
        "otp_email": producer.send_otp_email(
            "ana@example.com", "Codigo", "<p>123456</p>", src_email="contacto@empresa.cl"
        ),
        "whatsapp": producer.send_whatsapp(NUMBER, "Hola WA", src_number="56999944837"),
        "whatsapp_qr": producer.send_whatsapp_qr(NUMBER, "Hola QR"),
    }
    records = settle(producer, list(jobs.values()))
    assert {kind: records[job_id].state for kind, job_id in jobs.items()} == dict.fromkeys(
        jobs, State.SENT
    )
    records = identified(producer, list(jobs.values()))
    lookups = {kind: records[job_id].provider_id_lookup for kind, job_id in jobs.items()}
    if answers == "documented":
        # E-mail answers {"id"} as documented; the rest named none and were looked up.
        assert lookups == {**dict.fromkeys(jobs, "found"), "email": None, "otp_email": None}
    else:
        assert lookups == dict.fromkeys(jobs)
    charges = ledger(stack)
    charged_ids = Counter(charge["provider_id"] for charge in charges)
    for kind, job_id in jobs.items():
        record = records[job_id]
        assert record.provider_id and charged_ids[record.provider_id] == 1, kind
        assert record.attempts == 1 and record.sent_at is not None
    otp_charge = next(c for c in charges if c["provider_id"] == records[jobs["otp"]].provider_id)
    assert otp_charge["content_sha256"] == content_hash(otp_text)
    # Connectus keeps the plain hash (save_content=hash); we keep only a keyed one.
    assert records[jobs["otp"]].content_hmac not in (None, content_hash(otp_text))

    # Logs: one send.sent line per job with its context; no personal data, no OTP.
    stack.stop_worker_supervisor()
    log_text = stack.log_path("workers").read_text()
    events = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    sent = {e["job_id"]: e for e in events if e.get("event") == "send.sent"}
    assert set(sent) == set(jobs.values())
    for event in sent.values():
        assert {"queue", "attempt", "idempotency_key", "kind"} <= set(event)
    for secret in ("56987654321", "8765 4321", "ana@example.com", "771234", otp_text):
        assert secret not in log_text


def test_transient_faults_are_retried_and_each_message_is_charged_once(
    make_stack: Callable[..., LocalStack], answers: str
) -> None:
    # Retry-After: 0 and a throttle threshold above the 60 % injected: faults are
    # retried at once and are taken for noise, so the rate stays (the Retry-After
    # wait and the adaptation have tests of their own); retries and single charges
    # are the point.
    stack = make_stack(
        sandbox_flags={"rate_429": 0.3, "throttle_rate": 0.3, "retry_after_s": 0, "seed": 3,
                       "answers": answers},
        env={"RATE_THROTTLE_THRESHOLD": "0.9", **LOOKUP_SOON},
    )  # fmt: skip
    producer = Producer(stack.settings)
    job_ids = [producer.send_sms(NUMBER, f"mensaje {i}") for i in range(30)]
    records = settle(producer, job_ids)
    assert Counter(r.state for r in records.values()) == {State.SENT: 30}
    per_content = Counter(c["content_sha256"] for c in ledger(stack))
    assert sorted(per_content.values()) == [1] * 30
    # Each job found its own charge: the ids looked up match the ledger one to one.
    records = identified(producer, job_ids)
    by_id = {c["provider_id"]: c["content_sha256"] for c in ledger(stack)}
    for i, job_id in enumerate(job_ids):
        assert by_id[records[job_id].provider_id] == content_hash(f"mensaje {i}")
    with stack.sandbox_client() as client:
        stats = client.get("/_sandbox/stats").json()["requests"]
    answered_429 = sum(by_status.get("429", 0) for by_status in stats.values())
    assert answered_429 > 0  # the faults really happened and were retried through


def test_permanent_failure_is_dead_lettered_with_its_reason(
    stack: LocalStack, producer: Producer
) -> None:
    job_id = producer.send_sms(NUMBER, "para un subcliente inexistente", id_client="no-such-client")
    record = settle(producer, [job_id])[job_id]
    assert record.state is State.FAILED and record.attempts == 1
    assert record.error_class in {"NotFound", "InvalidRequest"}
    assert record.last_error
    assert producer.redis.zscore(producer.store.keys.dead_letters, job_id) is not None
    assert ledger(stack) == []


def test_a_dropped_answer_is_unknown_and_never_resent(
    make_stack: Callable[..., LocalStack], answers: str
) -> None:
    stack = make_stack(sandbox_flags={"drop_rate": 1.0, "answers": answers})
    producer = Producer(stack.settings)
    job_ids = [producer.send_sms(NUMBER, f"perdido {i}") for i in range(3)]
    records = settle(producer, job_ids)
    assert {r.state for r in records.values()} == {State.UNKNOWN}
    assert {r.error_class for r in records.values()} == {"ConnectionDropped"}
    # Charged once each by the sandbox; the worker did not send again.
    assert sorted(Counter(c["content_sha256"] for c in ledger(stack)).values()) == [1, 1, 1]


def test_scheduled_delivery_waits_for_its_time(stack: LocalStack, producer: Producer) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2)
    job_id = producer.send_sms(NUMBER, "programado", deliver_at=due)
    assert producer.get_status(job_id).state is State.SCHEDULED
    record = settle(producer, [job_id])[job_id]
    assert record.state is State.SENT
    assert record.sent_at is not None and record.sent_at >= due.replace(microsecond=0)


def test_a_killed_worker_process_is_respawned(make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack(processes=2)
    assert stack.workers is not None
    supervisor = stack.workers.pid
    before = wait_for(
        lambda: c if len(c := child_pids(supervisor)) == 2 else None,
        timeout_s=30,
        what="2 children",
    )
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_for(
        lambda: c if len(c := child_pids(supervisor)) == 2 and victim not in c else None,
        timeout_s=30,
        what="a replacement child",
    )
    assert after - before  # a new process took the dead one's place
    producer = Producer(stack.settings)
    job_ids = [producer.send_sms(NUMBER, f"tras el kill {i}") for i in range(10)]
    assert {r.state for r in settle(producer, job_ids).values()} == {State.SENT}


def test_sigterm_drains_in_flight_sends(make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack(sandbox_flags={"latency_ms": 1500}, threads=4)
    producer = Producer(stack.settings)
    job_ids = [producer.send_sms(NUMBER, f"en vuelo {i}") for i in range(4)]
    wait_for(
        lambda: all(producer.get_status(j).state is State.SENDING for j in job_ids),
        timeout_s=30,
        what="4 sends in flight",
    )
    assert stack.stop_worker_supervisor(timeout_s=30) == 0
    states = {producer.get_status(j).state for j in job_ids}
    assert states == {State.SENT}
    assert len(ledger(stack)) == 4
