"""Spans recorded in memory while a block runs: ``with recorded_spans() as spans:``.

The provider is :func:`tracing.build_provider`'s (the production sampler,
which drops parentless client spans), with the SDK's in-memory exporter.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import connectus_worker.tracing as tracing


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    provider = tracing.build_provider("connectus-test")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield exporter
    finally:
        tracing.disable()  # and shuts the provider down


def leaks(spans: Iterable[ReadableSpan], *secrets: str) -> list[str]:
    """Every ``span: attribute`` whose value (or an event's) contains one of ``secrets``."""
    found = []
    for span in spans:
        pairs = list((span.attributes or {}).items())
        pairs += [(f"{event.name}.{k}", v) for event in span.events
                  for k, v in (event.attributes or {}).items()]  # fmt: skip
        pairs += [("name", span.name), ("status", span.status.description or "")]
        found += [f"{span.name}: {key}={value!r}" for key, value in pairs
                  if any(secret in str(value) for secret in secrets)]  # fmt: skip
    return found


def basic_token(user: str, key: str) -> str:
    """The Authorization value a client with these credentials sends."""
    return base64.b64encode(f"{user}:{key}".encode()).decode()
