"""OpenTelemetry tracing: the one module that imports it, and a no-op without it.

The SDK, exporter and instrumentations (the ``[otel]`` extra) are imported only when
the ``OTEL_*`` variables ask for tracing (docs/deployment.md, "Tracing"). One trace
per message: the intake's or producer's span writes the W3C context into the job
(:data:`TRACE_FIELD`); each delivery attempt is a consumer span below it, each
Connectus call a client span. Spans never carry a destination or a content; a Redis
or HTTP span with no parent (polling, housekeeping) is dropped at the sampler.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from connectus_worker.config import ConfigError

try:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # FastAPI brings the API today; without it, tracing stays off
    trace = None  # type: ignore[assignment]

#: The job field with the W3C trace context (``traceparent``, ``tracestate``).
TRACE_FIELD = "trace"
#: Exporters :func:`start` knows (``OTEL_TRACES_EXPORTER``, comma-separated).
EXPORTERS = ("otlp", "console", "none")

_provider: Any = None  # the SDK TracerProvider of this process, when tracing is on
# Only W3C trace context travels in a message: never baggage, which may hold anything.
_propagator: Any = TraceContextTextMapPropagator() if trace is not None else None


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``OTEL_*`` ask for tracing: an exporter (not ``none``) or an OTLP endpoint
    is named, and ``OTEL_SDK_DISABLED`` is not true."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in ("true", "1", "yes"):
        return False
    exporters = _exporters(environ)
    if exporters is None:  # unset: only an OTLP endpoint turns it on
        return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                    or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))  # fmt: skip
    return exporters != ["none"]


def start(service_name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on if the ``OTEL_*`` variables ask for it; returns whether it is on.
    ``environ`` decides whether and which exporter (the SDK reads the rest from
    ``os.environ``); :class:`ConfigError` names a variable asking for what can't be had.
    ``service_name``: the default of ``OTEL_SERVICE_NAME``.
    """
    if not wanted(environ):
        return False
    try:
        from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: F401
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:  # the API alone comes with FastAPI; the SDK does not
        variable = "OTEL_TRACES_EXPORTER" if _exporters(environ) else "OTEL_EXPORTER_OTLP_ENDPOINT"
        raise ConfigError(variable, "asks for tracing, but the [otel] extra is not installed "
                          "(pip install 'connectus-worker[otel]')") from exc  # fmt: skip
    exporters = _exporters(environ) or ["otlp"]
    unknown = sorted(set(exporters) - set(EXPORTERS))
    if unknown:
        raise ConfigError("OTEL_TRACES_EXPORTER", f"unknown exporter(s) {unknown}; "
                          f"known: {', '.join(EXPORTERS)}")  # fmt: skip
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(variable) or "http/protobuf"
        if "otlp" in exporters and protocol != "http/protobuf":
            raise ConfigError(variable, f"{protocol!r} is not supported; "
                              "use http/protobuf (the OTLP/HTTP exporter)")  # fmt: skip
    for side in ("CLIENT", "SERVER"):  # the instrumentations would put headers in spans
        variable = f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{side}_REQUEST"
        if environ.get(variable, "").strip():
            # Connectus calls carry the API key in a header, the intake a bearer token:
            # a span attribute is no place for either (docs/security.md).
            raise ConfigError(variable, "header capture is refused: request headers carry "
                              "the Connectus API key and intake tokens")  # fmt: skip
    provider = build_provider(service_name)
    for name in exporters:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # It reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, ...) itself.
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    enable(provider)
    return True


def build_provider(service_name: str) -> Any:
    """An SDK ``TracerProvider`` without exporters: the resource (``OTEL_SERVICE_NAME``,
    default ``service_name``) and ``OTEL_TRACES_SAMPLER`` behind the orphan drop."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without
    # either it names the service "unknown_service:python": ours instead.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    # The sampler OTEL_TRACES_SAMPLER names (TracerProvider's default), behind ours.
    chosen = TracerProvider(shutdown_on_exit=False).sampler
    return TracerProvider(resource=resource, sampler=_sampler(chosen))


def enable(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``) and instrument Redis."""
    global _provider
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    disable()
    _provider = provider
    RedisInstrumentor().instrument(tracer_provider=provider)  # a singleton


def disable() -> None:
    """Stop tracing: uninstrument Redis, export what is left, shut the provider down."""
    global _provider
    if _provider is not None:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().uninstrument()
        _provider.shutdown()
    _provider = None


def _tracer() -> Any:
    """This process's tracer; else that of an application embedding a producer that set
    up OpenTelemetry itself; else None."""
    if _provider is not None:
        return _provider.get_tracer(__name__)
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider.get_tracer(__name__)


@contextmanager
def span(
    name: str,
    kind: str = "internal",
    attributes: Mapping[str, str | int] | None = None,
    parent: object = None,
) -> Iterator[None]:
    """A span around the block, current inside it; nothing when tracing is off.

    ``parent``: a W3C carrier (a job's :data:`TRACE_FIELD`, request headers); else the
    current context. ``attributes`` are prefixed ``connectus.`` unless dotted. An
    exception is recorded by its class only: its text may quote an answer.
    """
    tracer = _tracer()
    if tracer is None:
        yield
        return
    context = _propagator.extract(_w3c(parent)) if isinstance(parent, Mapping) else None
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=getattr(trace.SpanKind, kind.upper()),
        attributes=_named(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield
        except BaseException as exc:
            current.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            current.set_attribute("error.type", type(exc).__name__)
            raise


def annotate(**attributes: str | int | None) -> None:
    """Set attributes on the current span (``connectus.<name>``); None values are skipped."""
    if trace is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(_named({k: v for k, v in attributes.items() if v is not None}))


def carrier() -> dict[str, str]:
    """The current span's W3C trace context, to travel in a job; {} when off."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return {}
    found: dict[str, str] = {}
    _propagator.inject(found)
    return found


def instrument_http_client(client: Any) -> None:
    """Make ``client`` (an ``httpx.Client``) record a span per request, its URL cut to
    scheme, host and path; nothing when tracing is off."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(
        client, tracer_provider=_provider, request_hook=_scrub_url
    )


def _scrub_url(current: Any, request: Any) -> None:
    """The httpx instrumentation's request hook: no query string (the v1 API's
    numbers and texts), no user info, in whichever URL attribute it recorded."""
    parts = urlsplit(str(request.url))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    bare = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    recorded = getattr(current, "attributes", None) or {}
    for key in ("url.full", "http.url"):
        if key in recorded:
            current.set_attribute(key, bare)


def _w3c(carried: Mapping[Any, Any]) -> dict[str, str]:
    """The W3C fields of a carrier that may come from anywhere (a job, a request): text
    of a sane length only, so that a hostile value is ignored rather than raised on."""
    fields = ((name, carried.get(name)) for name in ("traceparent", "tracestate"))
    return {name: value for name, value in fields if isinstance(value, str) and len(value) <= 512}


def _named(attributes: Mapping[str, str | int]) -> dict[str, str | int]:
    return {(k if "." in k else f"connectus.{k}"): v for k, v in attributes.items()}


def _exporters(environ: Mapping[str, str]) -> list[str] | None:
    raw = environ.get("OTEL_TRACES_EXPORTER")
    if raw is None or not raw.strip():
        return None
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def _sampler(chosen: Any) -> Any:
    """``chosen``, except that a Redis or HTTP span without a parent is dropped."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class OrphanClientsDropped(Sampler):
        def should_sample(self, parent_context: Any, trace_id: int, name: str,
                          kind: Any = None, attributes: Any = None, links: Any = None,
                          trace_state: Any = None) -> SamplingResult:  # fmt: skip
            parent = trace.get_current_span(parent_context).get_span_context()
            if kind == trace.SpanKind.CLIENT and not parent.is_valid:
                return SamplingResult(Decision.DROP)
            return chosen.should_sample(  # type: ignore[no-any-return]
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"OrphanClientsDropped{{{chosen.get_description()}}}"

    return OrphanClientsDropped()
