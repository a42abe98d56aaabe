"""One trace over real parts: ``POST /v1/messages`` on a real socket, the job through a
real Redis, a Dramatiq worker (threads in this process, so that its spans reach the
in-memory exporter) and its HTTP call to the sandbox, a process on loopback. And the
production export: ``OTEL_EXPORTER_OTLP_ENDPOINT`` names a receiver on loopback, which
gets the spans as OTLP/HTTP protobuf."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import dramatiq
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from core import tracing
from devtools.service_server import ServiceServer
from devtools.stack import SANDBOX_KEY, SANDBOX_USER, LocalStack
from producers.api import Producer
from tests.support.tracing import basic_token, leaks, recorded_spans
from tests.support.waiting import wait_for
from worker.app import build_worker_app

TOKEN = "it-token-0123456789abcdef"
NUMBER, TEXT = "56987688060", "su retiro 5521 esta listo"
# The caller's own trace: the intake continues it.
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def test_one_trace_runs_from_the_intake_through_redis_and_the_worker_to_the_sandbox(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(start_workers=False, env={"INTAKE_TOKENS": TOKEN,
                                                 "WEBHOOK_SECRET": "it-hook-0123456789abcdef"})  # fmt: skip
    settings = stack.settings
    with recorded_spans() as exporter:
        with ServiceServer(settings) as server, httpx.Client(base_url=server.base_url) as http:
            answer = http.post(
                "/v1/messages",
                json={"type": "sms", "dst_number": NUMBER, "sms_content": TEXT},
                headers={"Authorization": f"Bearer {TOKEN}", "traceparent": TRACEPARENT},
            )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        app = build_worker_app(settings)
        worker = dramatiq.Worker(app.broker, queues={"transactional"}, worker_threads=2)
        worker.start()
        try:
            producer = Producer(settings)
            wait_for(lambda: producer.get_status(job_id).state.value == "sent", timeout_s=30,
                     what="the job sent")  # fmt: skip
        finally:
            worker.stop()
            app.close()
        spans = list(exporter.get_finished_spans())
    mine = [s for s in spans if s.context.trace_id == int(CALLER_TRACE, 16)]
    named = {(s.kind, s.name): s for s in mine}
    intake = named[SpanKind.SERVER, "POST /v1/messages"]
    enqueue = named[SpanKind.PRODUCER, "enqueue sms"]
    attempt = named[SpanKind.CONSUMER, "send sms"]
    call = named[SpanKind.CLIENT, "POST"]
    assert intake.parent is not None and intake.parent.span_id == 0x00F067AA0BA902B7
    assert enqueue.parent is not None and enqueue.parent.span_id == intake.context.span_id
    assert attempt.parent is not None and attempt.parent.span_id == enqueue.context.span_id
    assert call.parent is not None and call.parent.span_id == attempt.context.span_id
    assert (intake.attributes or {})["http.response.status_code"] == 202
    assert (attempt.attributes or {})["connectus.job_id"] == job_id
    assert (attempt.attributes or {})["connectus.outcome"] == "sent"
    assert (attempt.attributes or {})["connectus.attempt"] == 1
    assert (call.attributes or {})["http.status_code"] == 200
    assert (call.attributes or {})["http.url"] == f"{stack.sandbox_url}/api_v3/sms/send_individual"
    # The Redis commands of the intake and the worker are in the trace too.
    redis_parents = {s.parent.span_id for s in mine if s.parent and s.kind is SpanKind.CLIENT
                     and (s.attributes or {}).get("db.system") == "redis"}  # fmt: skip
    assert {enqueue.context.span_id, attempt.context.span_id} <= redis_parents
    secrets = (NUMBER, NUMBER[2:], TEXT, "5521", TOKEN, SANDBOX_KEY,
               basic_token(SANDBOX_USER, SANDBOX_KEY))  # fmt: skip
    assert leaks(spans, *secrets) == []


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps each POST's path and body."""

    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def test_start_exports_over_otlp_http_to_the_endpoint_the_variables_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "connectus-it")
        assert tracing.start("connectus-worker") is True
        try:
            with tracing.span("send sms", "consumer", {"job_id": "j-1"}):
                tracing.annotate(outcome="sent")
        finally:
            tracing.disable()  # flushes the batch
    finally:
        server.shutdown()
        server.server_close()
    assert [path for path, _ in _Collector.received] == ["/v1/traces"]
    request = ExportTraceServiceRequest.FromString(_Collector.received[0][1])
    resource = request.resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}[
        "service.name"
    ] == "connectus-it"
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.name == "send sms"
    assert {a.key: a.value.string_value for a in span.attributes} == {
        "connectus.job_id": "j-1", "connectus.outcome": "sent"}  # fmt: skip
