"""One trace over real parts: ``POST /v1/messages`` on a real socket (the service in a
thread of this process, its spans in the in-memory exporter), the job through a real
Redis, a worker process (``connectus worker``, tracing turned on by
``OTEL_EXPORTER_OTLP_ENDPOINT``) exporting OTLP/HTTP to a receiver on loopback, and
its HTTP call to the sandbox, another process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.trace import SpanKind

import connectus_worker.tracing as tracing
from devtools.service_server import ServiceServer
from devtools.stack import SANDBOX_KEY, SANDBOX_USER, LocalStack
from tests.support.tracing import basic_token, leaks, recorded_spans
from tests.support.waiting import wait_for

TOKEN = "it-token-0123456789abcdef"
NUMBER, TEXT = "56987688060", "su retiro 5521 esta listo"
# The caller's own trace: the intake continues it.
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


class Receiver:
    """An OTLP/HTTP trace receiver on loopback: keeps each POST's path and body."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                posts.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # no access log on stderr

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """Every span received, with its resource's attributes."""
        found = []
        for _, body in list(self.posts):
            for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                found += [(resource, span) for scope in resource_spans.scope_spans
                          for span in scope.spans]  # fmt: skip
        return found


def _attributes(pairs: Any) -> dict[str, Any]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in pairs}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_one_trace_runs_from_the_intake_through_redis_and_a_worker_process_to_the_sandbox(
    make_stack: Callable[..., LocalStack], receiver: Receiver
) -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    stack = make_stack(threads=2, env={**otel, "INTAKE_TOKENS": TOKEN,
                                       "WEBHOOK_SECRET": "it-hook-0123456789abcdef"})  # fmt: skip
    with recorded_spans() as exporter:
        with (
            ServiceServer(stack.settings) as server,
            httpx.Client(base_url=server.base_url) as http,
        ):
            answer = http.post(
                "/v1/messages",
                json={"type": "sms", "dst_number": NUMBER, "sms_content": TEXT},
                headers={"Authorization": f"Bearer {TOKEN}", "traceparent": TRACEPARENT},
            )
        intake_spans = list(exporter.get_finished_spans())
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]

    def attempt_exported() -> list[tuple[dict[str, Any], Span]]:
        return [(r, s) for r, s in receiver.spans() if s.kind == Span.SPAN_KIND_CONSUMER]

    [(resource, attempt)] = wait_for(attempt_exported, timeout_s=30, what="the worker's span")
    ours = {s.span_id: s for _, s in receiver.spans() if s.trace_id.hex() == CALLER_TRACE}
    named = {(s.kind, s.name): s for s in intake_spans}
    intake = named[SpanKind.SERVER, "POST /v1/messages"]
    enqueue = named[SpanKind.PRODUCER, "enqueue sms"]
    assert intake.context.trace_id == int(CALLER_TRACE, 16) == int(attempt.trace_id.hex(), 16)
    assert intake.parent is not None and intake.parent.span_id == 0x00F067AA0BA902B7
    assert enqueue.parent is not None and enqueue.parent.span_id == intake.context.span_id
    assert (intake.attributes or {})["http.response.status_code"] == 202
    # The worker process's attempt is the enqueue's child, in the same trace.
    assert int(attempt.parent_span_id.hex(), 16) == enqueue.context.span_id
    assert resource["service.name"] == "connectus-worker"
    assert _attributes(attempt.attributes) == {
        "connectus.job_id": job_id, "connectus.kind": "sms", "connectus.queue": "transactional",
        "connectus.attempt": 1, "connectus.outcome": "sent"}  # fmt: skip
    calls = [s for s in ours.values() if s.parent_span_id == attempt.span_id]
    http_calls = [_attributes(s.attributes) for s in calls if s.name == "POST"]
    assert http_calls == [_attributes(s.attributes) for s in calls
                          if "http.url" in _attributes(s.attributes)]  # fmt: skip
    assert [(c["http.url"], c["http.status_code"]) for c in http_calls] == [
        (f"{stack.sandbox_url}/api_v3/sms/send_individual", 200)]  # fmt: skip
    assert any(_attributes(s.attributes).get("db.system") == "redis" for s in calls)
    secrets = (NUMBER, NUMBER[2:], TEXT, "5521", TOKEN, SANDBOX_KEY,
               basic_token(SANDBOX_USER, SANDBOX_KEY))  # fmt: skip
    assert leaks(intake_spans, *secrets) == []
    # Stopped, the worker process flushes what is left (at exit): its whole life's
    # export is this one trace (the broker's polling and housekeeping are not traced).
    assert stack.stop_worker_supervisor() == 0
    assert {s.trace_id.hex() for _, s in receiver.spans()} == {CALLER_TRACE}
    exported = b"".join(body for _, body in receiver.posts)
    assert [s for s in secrets if s.encode() in exported] == []


def test_start_exports_over_otlp_http_to_the_endpoint_the_variables_name(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "connectus-it")
    assert tracing.start("connectus-worker") is True
    try:
        with tracing.span("send sms", "consumer", {"job_id": "j-1"}):
            tracing.annotate(outcome="sent")
    finally:
        tracing.disable()  # flushes the batch
    assert [path for path, _ in receiver.posts] == ["/v1/traces"]
    [(resource, span)] = receiver.spans()
    assert resource["service.name"] == "connectus-it" and span.name == "send sms"
    assert _attributes(span.attributes) == {"connectus.job_id": "j-1", "connectus.outcome": "sent"}
