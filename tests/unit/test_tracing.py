"""Tracing (tracing.py) with the SDK's in-memory exporter: one trace from the
producer through the queue (a StubBroker worker) to the Connectus call (httpx
MockTransport), what the spans carry and what they never do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

import connectus_worker.tracing as tracing
from connectus_worker.config import ConfigError, load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.producers.api import Producer
from connectus_worker.worker.actors import register_actors
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from connectus_worker.worker.senders import ClientSender
from tests.support.clock import Clock
from tests.support.connectus import TEST_KEY, TEST_USER, make_client
from tests.support.pipeline import take_job
from tests.support.tracing import basic_token, leaks, recorded_spans

NUMBER, TEXT = "56987654321", "tu pedido 7781 va en camino"
ROOT = Path(__file__).resolve().parents[2]


def _actors(producer: Producer, clock: Clock, *answers: Any) -> dict[Kind, Any]:
    """The actors on a StubBroker, sending through a client on a MockTransport that
    is instrumented as the worker's is (``on_client``)."""
    client, _ = make_client(*answers, on_client=tracing.instrument_http_client)
    settings = load_settings({"RETRY_ATTEMPTS": "1"})
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store, policy=policy,
                            send=ClientSender(client, settings, sleep=lambda s: None),
                            worker_id="w", lease_ms=60_000, clock=clock)  # fmt: skip
    broker = StubBroker()
    broker.emit_after("process_boot")
    return register_actors(broker, pipeline, settings)


def _run(actor: Any, *jobs: dict[str, Any], between: Callable[[], None] = lambda: None) -> None:
    """Deliver each job in turn through the broker and one Dramatiq worker thread,
    calling ``between`` after each."""
    worker = dramatiq.Worker(actor.broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        for job in jobs:
            actor.send(job=job)
            actor.broker.join(actor.queue_name)
            worker.join()
            between()
    finally:
        worker.stop()


def _one(spans: list[ReadableSpan], kind: SpanKind, name: str) -> ReadableSpan:
    found = [s for s in spans if s.kind is kind and s.name == name]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


def test_one_trace_from_the_producer_through_the_queue_to_the_connectus_call(
    producer: Producer, clock: Clock
) -> None:
    sent = httpx.Response(200, json={"status": "ESME_ROK", "id": "prov-1"})
    with recorded_spans() as exporter:
        actors = _actors(producer, clock, sent)
        job_id = producer.send_sms(NUMBER, TEXT)
        job = take_job(producer)
        _run(actors[Kind.SMS], job)
        spans = list(exporter.get_finished_spans())
    enqueue = _one(spans, SpanKind.PRODUCER, "enqueue sms")
    attempt = _one(spans, SpanKind.CONSUMER, "send sms")
    call = _one(spans, SpanKind.CLIENT, "POST")
    assert enqueue.context.trace_id == attempt.context.trace_id == call.context.trace_id
    assert attempt.parent is not None and attempt.parent.span_id == enqueue.context.span_id
    assert call.parent is not None and call.parent.span_id == attempt.context.span_id
    assert enqueue.attributes == {"connectus.job_id": job_id, "connectus.kind": "sms",
                                  "connectus.queue": "transactional"}  # fmt: skip
    assert attempt.attributes == {"connectus.job_id": job_id, "connectus.kind": "sms",
                                  "connectus.queue": "transactional", "connectus.attempt": 1,
                                  "connectus.outcome": "sent"}  # fmt: skip
    assert call.attributes is not None and call.attributes["http.status_code"] == 200
    # Redis (the official instrumentation) under both: the enqueue and the claim.
    redis_parents = {s.parent.span_id for s in spans if s.parent
                     and (s.attributes or {}).get("db.system") == "redis"}  # fmt: skip
    assert {enqueue.context.span_id, attempt.context.span_id} <= redis_parents
    token = basic_token(TEST_USER, TEST_KEY)
    assert leaks(spans, NUMBER, "987654321", TEXT, "7781", TEST_KEY, token) == []


def test_every_attempt_is_a_span_in_the_same_trace_with_its_number_and_outcome(
    producer: Producer, clock: Clock
) -> None:
    unavailable = httpx.Response(503, json={"error": "busy"})
    sent = httpx.Response(200, json={"status": "ESME_ROK", "id": "prov-2"})
    with recorded_spans() as exporter:
        actors = _actors(producer, clock, unavailable, sent)
        job_id = producer.send_sms(NUMBER, TEXT)
        job = take_job(producer)
        states: list[str] = []

        def later() -> None:
            states.append(producer.get_status(job_id).state.value)
            clock.advance(seconds=60)  # past the retry's backoff

        # The retry's message is a copy of the same job (worker.pipeline), due later.
        _run(actors[Kind.SMS], job, job, between=later)
        assert states == ["retrying", "sent"]
        spans = list(exporter.get_finished_spans())
    attempts = sorted((s for s in spans if s.kind is SpanKind.CONSUMER),
                      key=lambda s: s.attributes["connectus.attempt"])  # type: ignore[index]  # fmt: skip
    calls = [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "POST"]
    assert [(a.attributes or {}).get("connectus.outcome") for a in attempts] == ["retrying", "sent"]
    assert [(a.attributes or {}).get("connectus.attempt") for a in attempts] == [1, 2]
    assert (attempts[0].attributes or {}).get("connectus.reason") == "http_503"
    assert len({s.context.trace_id for s in [*attempts, *calls]}) == 1
    assert sorted((c.attributes or {})["http.status_code"] for c in calls) == [200, 503]


def test_a_job_queued_without_trace_context_starts_its_own_trace(
    producer: Producer, clock: Clock
) -> None:
    job_id = producer.send_sms(NUMBER, TEXT)  # tracing off: nothing in the job
    job = take_job(producer)
    assert tracing.TRACE_FIELD not in job
    with recorded_spans() as exporter:
        _run(_actors(producer, clock, httpx.Response(200, json={"id": "p"}))[Kind.SMS], job)
        spans = list(exporter.get_finished_spans())
    attempt = _one(spans, SpanKind.CONSUMER, "send sms")
    assert attempt.parent is None and (attempt.attributes or {})["connectus.outcome"] == "sent"
    assert producer.get_status(job_id).state.value == "sent"


@pytest.mark.parametrize(
    "carried",
    ["00-zz", ["x"], 7, {"traceparent": "00-nothex-00-01"}, {"traceparent": 7},
     {"traceparent": ["00", "01"], "tracestate": {"a": 1}}, {"traceparent": "0" * 100_000}],
)  # fmt: skip
def test_a_malformed_trace_field_is_ignored_and_the_job_still_sent(
    producer: Producer, clock: Clock, carried: Any
) -> None:
    job_id = producer.send_sms(NUMBER, TEXT)
    job = {**take_job(producer), tracing.TRACE_FIELD: carried}
    with recorded_spans() as exporter:
        _run(_actors(producer, clock, httpx.Response(200, json={"id": "p"}))[Kind.SMS], job)
        attempt = _one(list(exporter.get_finished_spans()), SpanKind.CONSUMER, "send sms")
    assert attempt.parent is None
    assert producer.get_status(job_id).state.value == "sent"


def test_the_v1_query_string_never_reaches_a_span() -> None:
    client, recorder = make_client(httpx.Response(200, json={"id_sms": "f047"}),
                                   on_client=tracing.instrument_http_client)  # fmt: skip
    with recorded_spans() as exporter:
        with tracing.span("parent"):
            client.v1.send_sms(dst_number=NUMBER, sms_content=TEXT)
        spans = list(exporter.get_finished_spans())
    assert NUMBER in str(recorder.last.url)  # it was in the query string
    call = _one(spans, SpanKind.CLIENT, "POST")
    assert (call.attributes or {})["http.url"] == "https://api.test/api_v1/send_sms"
    assert leaks(spans, NUMBER, "So long", TEXT, TEST_KEY, basic_token(TEST_USER, TEST_KEY)) == []


def test_a_client_span_without_a_parent_is_dropped(producer: Producer) -> None:
    with recorded_spans() as exporter:
        producer.redis.set("orphan", "1")  # the broker's polling, housekeeping
        with tracing.span("parent"):
            producer.redis.get("orphan")
        spans = list(exporter.get_finished_spans())
    assert sorted(s.name for s in spans) == ["GET", "parent"]
    assert _one(spans, SpanKind.CLIENT, "GET").attributes["db.statement"] == "GET ?"  # type: ignore[index]


def test_with_tracing_off_nothing_is_added_and_the_carrier_is_empty(producer: Producer) -> None:
    producer.send_sms(NUMBER, TEXT)
    assert tracing.TRACE_FIELD not in take_job(producer)
    with tracing.span("nothing", "producer", {"job_id": "j"}):
        assert tracing.carrier() == {}
        tracing.annotate(outcome="sent")  # no span: no effect, no error


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_only_the_otel_variables_turn_it_on(environ: dict[str, str], wanted: bool) -> None:
    assert tracing.wanted(environ) is wanted


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
         "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "console",
          "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "Authorization"},
         "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"),
    ],
)  # fmt: skip
def test_a_bad_otel_variable_fails_start_up_naming_it(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        tracing.start("connectus-test", environ)
    assert raised.value.variable == variable


def test_start_with_the_console_exporter_traces_with_the_service_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert tracing.start("connectus-test", {"OTEL_TRACES_EXPORTER": "console"}) is True
    try:
        with tracing.span("started"):
            current: Any = trace.get_current_span()
            assert current.is_recording()
            assert current.resource.attributes["service.name"] == "connectus-test"
    finally:
        tracing.disable()
    assert tracing.start("connectus-test", {}) is False


def test_the_product_runs_without_the_otel_extra() -> None:
    # A fresh interpreter without the extra's packages (the API comes with FastAPI).
    blocked = ["opentelemetry.sdk", "opentelemetry.instrumentation", "opentelemetry.exporter"]
    script = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked!r}))\n"
        "from connectus_worker import tracing; import connectus_worker.producers.api, connectus_worker.worker.app, connectus_worker.service.app\n"
        "assert tracing.start('x', {}) is False\n"
        "with tracing.span('s', 'producer', {'job_id': 'j'}): tracing.annotate(outcome='sent')\n"
        "assert tracing.carrier() == {}\n"
        "try:\n"
        "    tracing.start('x', {'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://c:4318'})\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OTEL_EXPORTER_OTLP_ENDPOINT: asks for tracing, but the [otel]")


def test_a_producer_in_an_application_with_its_own_opentelemetry_joins_its_traces() -> None:
    # A fresh interpreter: the application sets the global provider (once per process).
    script = """
import dramatiq, fakeredis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from connectus_worker.config import load_settings
from connectus_worker.producers.api import Producer
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
producer = Producer(load_settings({}), redis_client=fakeredis.FakeRedis())
with trace.get_tracer("app").start_as_current_span("checkout") as app_span:
    producer.send_sms("56987654321", "hola")
keys = producer.store.keys
rid = producer.redis.lpop(keys.queue("transactional"))
job = dramatiq.Message.decode(producer.redis.hget(keys.queue_messages("transactional"), rid)).kwargs["job"]
[enqueue] = [s for s in exporter.get_finished_spans() if s.name == "enqueue sms"]
assert enqueue.parent.span_id == app_span.get_span_context().span_id
assert job["trace"]["traceparent"].split("-")[2] == format(enqueue.context.span_id, "016x")
print("joined")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # (Its last line: the producer may log first, e.g. that Redis has no WAITAOF.)
    assert done.stdout.strip().splitlines()[-1] == "joined"
