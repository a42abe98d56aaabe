"""Prometheus metrics of the service, in a registry of its own.

One registry per app (not the process-global one): several apps in one
process (tests) never collide, and ``/metrics`` shows exactly this service.
Label values are bounded: routes are templates (``/v1/messages/{job_id}``,
never an id), platform statuses outside the known list become ``other``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

#: Connectus platform statuses (docs/connectus-api.md), the only status label values.
KNOWN_STATUSES = frozenset(
    {"PROGRAMADO", "EN_COLA", "NUMERO_INVALIDO", "ENVIADO_A_CARRIER", "ESPERANDO_RESPUESTA",
     "NO_ENTREGABLE", "ENTREGADO"}
)  # fmt: skip


class Metrics:
    """The service's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "connectus_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "connectus_http_request_duration_seconds",
            "Time to answer an HTTP request, in seconds, by route template.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "connectus_webhook_events_total",
            "Webhook events from Connectus, by kind (sms_status, sms_incoming), platform "
            "status and result (recorded, duplicate, unmatched: no job for the id_sms).",
            ["kind", "status", "result"],
            registry=self.registry,
        )
        self.opt_outs = Counter(
            "connectus_opt_outs_total",
            "Numbers newly opted out of marketing by an incoming keyword SMS.",
            registry=self.registry,
        )
        self.opt_out_refusals = Counter(
            "connectus_opt_out_refusals_total",
            "Marketing (bulk) sends refused at the intake because the number opted out.",
            registry=self.registry,
        )

    def webhook_event(self, kind: str, status: str, result: str) -> None:
        label = status if status in KNOWN_STATUSES or status == "-" else "other"
        self.webhook_events.labels(kind=kind, status=label, result=result).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
