"""Pauses scoped to what failed, end to end: real Redis, the sandbox over HTTP and
worker processes. Judged by the job records, the sandbox's charge ledger and the
breaker's shared state in Redis, never by the worker's own say-so."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from connectus_worker.redis import connect
from connectus_worker.worker.breaker import CircuitBreaker
from devtools.embedded_redis import free_port
from devtools.stack import LocalStack
from tests.support.stack_checks import deferred, ledger, open_scopes, set_faults, settle
from tests.support.waiting import wait_for

CHILE = "+56 9 8765 4321"
MEXICO = "+52 55 1234 5678"
# A pause lasts longer than the test: a message it covers is deferred, never probed.
LONG_PAUSE = {"BREAKER_OPEN_S": "60", "BREAKER_MAX_OPEN_S": "120", "BREAKER_FAILURE_THRESHOLD": "3"}


def others(producer: Producer) -> dict[str, str]:
    """One send of every other kind: e-mail, e-mail OTP, WhatsApp (v3), SMS to Mexico."""
    return {
        "email": producer.send_email(
            "ana@example.com", "Hola", "<p>Hola</p>", src_email="contacto@empresa.cl"
        ),
        "otp_email": producer.send_otp_email(
            "ana@example.com", "Codigo", "<p>123456</p>", src_email="contacto@empresa.cl"
        ),
        "whatsapp": producer.send_whatsapp(CHILE, "Hola WA", src_number="56999944837"),
        "sms_mexico": producer.send_sms(MEXICO, "Hola México"),
    }


def test_an_sms_balance_exhausted_for_one_country_keeps_everything_else_going(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(env=LONG_PAUSE)
    producer = Producer(stack.settings)
    breaker = CircuitBreaker.from_settings(stack.settings, connect(stack.settings))
    with stack.sandbox_client() as client:  # Chile's SMS balance is spent
        put = client.put("/_sandbox/balance", json={"product": "sms", "amount": 0, "id_country": 1})
        put.raise_for_status()

    first = producer.send_sms(CHILE, "sin saldo")
    scope = wait_for(lambda: open_scopes(breaker).get("balance:sms:CL"), timeout_s=30,
                     what="balance:sms:CL open")  # fmt: skip
    assert scope["state"] == "open" and scope["reason"].startswith("BalanceExhausted")
    # The breaker hears of the error before the job's record does: await the record.
    record = wait_for(
        lambda: (r := producer.get_status(first)).state is not State.SENDING and r,
        timeout_s=15, what="the first send's outcome recorded",
    )  # fmt: skip
    assert (
        record.state in (State.RETRYING, State.QUEUED) and record.error_class == "BalanceExhausted"
    )

    chile_sms = producer.send_sms(CHILE, "espera")
    chile_otp = producer.send_otp(CHILE, "Tu codigo es 112233")  # the same balance pays
    rest = others(producer)
    records = settle(producer, list(rest.values()))
    assert {kind: records[j].state for kind, j in rest.items()} == dict.fromkeys(rest, State.SENT)
    for job_id in (chile_sms, chile_otp):
        wait_for(lambda j=job_id: deferred(producer, j), timeout_s=15, what="a Chile send deferred")
    assert set(open_scopes(breaker)) == {"balance:sms:CL"}  # nothing else was paused
    charged = Counter(c["product"] for c in ledger(stack))
    assert charged == {"email": 2, "whatsapp": 1, "sms": 1}  # the SMS is Mexico's
    assert producer.redis.zcard(producer.store.keys.dead_letters) == 0

    # Topped up and closed by an operator: Chile's SMS go again at once.
    with stack.sandbox_client() as client:
        client.put("/_sandbox/balance", json={"product": "sms", "amount": 1000, "id_country": 1})
    assert breaker.close("balance:sms:CL") == "open"
    again = producer.send_sms(CHILE, "con saldo")
    assert settle(producer, [again])[again].state is State.SENT


def test_a_qr_host_5xx_streak_pauses_qr_only(make_stack: Callable[..., LocalStack]) -> None:
    port = free_port()
    stack = make_stack(env={**LONG_PAUSE, "WORKER_METRICS_PORT": str(port)})
    producer = Producer(stack.settings)
    breaker = CircuitBreaker.from_settings(stack.settings, connect(stack.settings))
    # 502/503 only on the QR host (ambiguous_charge_rate 0: nothing charged there).
    set_faults(stack, error_rate=1.0, apis=["qr"], ambiguous_charge_rate=0.0)

    failing = [producer.send_whatsapp_qr(CHILE, f"Hola QR {i}") for i in range(3)]
    scope = wait_for(lambda: open_scopes(breaker).get("host:qr"), timeout_s=30,
                     what="host:qr open")  # fmt: skip
    assert scope["reason"].startswith(("ServiceUnavailable", "AmbiguousServerError"))
    assert {producer.get_status(j).state for j in failing} <= {
        State.RETRYING, State.UNKNOWN, State.QUEUED}  # fmt: skip

    held = producer.send_whatsapp_qr(CHILE, "Hola QR, espera")
    v3 = {"sms": producer.send_sms(CHILE, "Hola v3"), **others(producer)}
    records = settle(producer, list(v3.values()))
    assert {kind: records[j].state for kind, j in v3.items()} == dict.fromkeys(v3, State.SENT)
    wait_for(lambda: deferred(producer, held), timeout_s=15, what="the QR send deferred")
    assert set(open_scopes(breaker)) == {"host:qr"}
    assert breaker.status()["consecutive_failures"]["host:v3"] == 0
    assert not [c for c in ledger(stack) if c["product"] == "whatsapp_qr"]

    # The metrics show the open scope, its reason and until when.
    text = httpx.get(f"{stack.metrics_url}/metrics", timeout=10).text
    samples = {
        (s.name, s.labels.get("scope")): (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("connectus_worker_breaker")
    }
    labels, value = samples[("connectus_worker_breaker_state", "host:qr")]
    assert value == 2 and labels["reason"] == scope["reason"]
    assert samples[("connectus_worker_breaker_state", "account")][1] == 0
    _, until = samples[("connectus_worker_breaker_open_until_seconds", "host:qr")]
    assert until == scope["open_until_ms"] / 1000


def test_smpp_refusals_pause_the_scope_they_are_about_or_retry_a_few_times(
    make_stack: Callable[..., LocalStack],
) -> None:
    """Three phases on one stack (each closes the last one's scope first):
    ESME_RPROHIBITED pauses SMS, ESME_RBINDFAIL the account, ESME_RSUBMITFAIL
    is retried 3 times and dead-lettered."""
    stack = make_stack(env={**LONG_PAUSE, "RETRY_ATTEMPTS": "1"})  # one call per attempt
    producer = Producer(stack.settings)
    breaker = CircuitBreaker.from_settings(stack.settings, connect(stack.settings))

    # ESME_RPROHIBITED: SMS of every country wait, e-mail goes, nothing fails one by one.
    set_faults(stack, refusal_rate=1.0, refusal_status="ESME_RPROHIBITED")
    first = producer.send_sms(CHILE, "prohibido")
    scope = wait_for(lambda: open_scopes(breaker).get("product:sms"), timeout_s=30,
                     what="product:sms open")  # fmt: skip
    assert scope["reason"] == "ProductDenied: ESME_RPROHIBITED"
    held = [producer.send_sms(MEXICO, "otro país"), producer.send_otp(CHILE, "Codigo 445566")]
    email = producer.send_email("ana@example.com", "Hola", "<p>Hola</p>",
                                src_email="contacto@empresa.cl")  # fmt: skip
    assert settle(producer, [email])[email].state is State.SENT
    for job_id in held:
        wait_for(lambda j=job_id: deferred(producer, j), timeout_s=15, what="an SMS deferred")
    assert producer.get_status(first).error_class == "ProductDenied"
    assert producer.redis.zcard(producer.store.keys.dead_letters) == 0

    # ESME_RBINDFAIL: the operator refused the account's login: everything waits.
    set_faults(stack, refusal_status="ESME_RBINDFAIL")
    breaker.close("product:sms")
    producer.send_sms(CHILE, "sin sesión")
    scope = wait_for(lambda: open_scopes(breaker).get("account"), timeout_s=30,
                     what="account open")  # fmt: skip
    assert scope["reason"] == "OperatorLoginFailed: ESME_RBINDFAIL"
    for job_id in others(producer).values():
        wait_for(lambda j=job_id: deferred(producer, j), timeout_s=15, what="a send deferred")
    assert [c["product"] for c in ledger(stack)] == ["email"]  # phase 1's only

    # ESME_RSUBMITFAIL: often temporary: 1 + 3 durable retries, never charged, then failed.
    set_faults(stack, refusal_status="ESME_RSUBMITFAIL")
    breaker.close("account")
    job_id = producer.send_sms(CHILE, "falla al enviar")
    record = settle(producer, [job_id], timeout_s=60)[job_id]
    # RETRY_ATTEMPTS=1: each attempt (a claim in the ledger) is one HTTP call.
    assert (record.state, record.error_class, record.attempts) == (State.FAILED, "SubmitRefused", 4)
    assert "retries exhausted after 4 attempts" in (record.last_error or "")
    assert [c["product"] for c in ledger(stack)] == ["email"]  # a refusal is never charged
