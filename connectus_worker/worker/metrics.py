"""Prometheus metrics of the workers: every metric is defined here.

:class:`WorkerMetrics` lives in each worker process, fed by cheap hooks on the send path
(no Redis call). The collectors read Redis at scrape time, in the supervisor only
(:func:`supervisor_registry`), which also merges the children's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``, one directory per pod), so a dead child's counts stay and
totals never go backwards. Children own no gauges. Campaign progress is exported by the
HTTP service (:class:`service.metrics.CampaignCollector`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import redis
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from connectus_worker.domain.models import Kind
from connectus_worker.ledger.keys import Keys
from connectus_worker.worker.breaker import CircuitBreaker

log = structlog.get_logger("connectus_worker.worker.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: The outcome classes of a send (label ``outcome``).
OUTCOMES = ("sent", "unknown", "failed", "retrying", "deferred", "skipped")
#: Why a message was deferred (label ``reason``); anything else is ``other``.
DEFERRAL_REASONS = frozenset(
    {"breaker_open", "breaker_half_open", "RateLimitTimeout", "DestinationCapped"}
)
#: Breaker states as gauge values.
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def outcome_class(result: str) -> tuple[str, str]:
    """``(outcome class, deferral reason)`` of a :meth:`SendPipeline.handle` answer.

    ``fenced`` (another worker recorded the outcome) counts as ``skipped``;
    a quarantined message (``malformed:<id>``) as ``failed``.
    """
    head, _, detail = result.partition(":")
    if head == "deferred":
        return "deferred", detail if detail in DEFERRAL_REASONS else "other"
    if head in ("skipped", "fenced"):
        return "skipped", ""
    if head == "malformed":
        return "failed", ""
    return (head if head in OUTCOMES else "unknown"), ""


class WorkerMetrics:
    """The send-path counters and histograms of one worker process, in ``registry`` (a
    fresh one by default, so several apps in one test process never collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=self.registry)

        def histogram(name: str, doc: str, buckets: Sequence[float], *labels: str) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets,
                             registry=self.registry)  # fmt: skip

        self.sends = counter(
            "connectus_worker_sends_total",
            "Messages handled, by kind and outcome class "
            "(sent, unknown, failed, retrying, deferred, skipped), and Connectus account.",
            "kind", "outcome", "account",
        )  # fmt: skip
        self.retries = counter(
            "connectus_worker_retries_total",
            "Retries by layer: in_process (tenacity, same delivery) or durable "
            "(rescheduled through Redis).",
            "kind", "layer",
        )  # fmt: skip
        self.throttles = counter(
            "connectus_worker_throttles_total",
            "Throttling answers from Connectus (HTTP 429, ESME_RTHROTTLED), one per response, "
            "by kind and Connectus account.",
            "kind", "account",
        )  # fmt: skip
        self.ambiguous = counter(
            "connectus_worker_ambiguous_total",
            "Sends whose outcome is ambiguous (recorded unknown), by error class.",
            "kind", "error",
        )  # fmt: skip
        self.deferrals = counter(
            "connectus_worker_deferrals_total",
            "Messages put back on the schedule before a claim, by reason "
            "(breaker_open, breaker_half_open, RateLimitTimeout, DestinationCapped), and "
            "Connectus account.",
            "kind", "reason", "account",
        )  # fmt: skip
        self.status_lookups = counter(
            "connectus_worker_status_lookups_total",
            "E-mail and WhatsApp status lookups (worker.channel_status), by kind and "
            "result (polled, final, error, too_old: dropped unpolled after STATUS_POLL_MAX_AGE_S).",
            "kind", "result",
        )  # fmt: skip
        self.delivery_statuses = counter(
            "connectus_worker_delivery_statuses_total",
            "Delivery statuses recorded by polling (e-mail, WhatsApp), by kind and status.",
            "kind", "status",
        )  # fmt: skip
        self.email_events = counter(
            "connectus_worker_email_events_total",
            "E-mail events recorded by polling (ABIERTO, CLICKEADO), each once per job.",
            "event",
        )  # fmt: skip
        self.send_duration = histogram(
            "connectus_worker_send_duration_seconds",
            "Duration of one HTTP call to Connectus (each attempt), in seconds.",
            _LATENCY_BUCKETS, "kind",
        )  # fmt: skip
        self.ratelimit_wait = histogram(
            "connectus_worker_ratelimit_wait_seconds",
            "Time a sender slept for a rate-limiter token, in seconds, by product and account.",
            _WAIT_BUCKETS, "product", "account",
        )  # fmt: skip

    def handled(self, kind: Kind, result: str, account: str = "default") -> None:
        """Count one :meth:`SendPipeline.handle` answer (``sent``, ``deferred:...``, ...)
        of a job of ``account``."""
        outcome, reason = outcome_class(result)
        self.sends.labels(kind.value, outcome, account).inc()
        if outcome == "deferred":
            self.deferrals.labels(kind.value, reason, account).inc()
        elif outcome == "retrying":
            self.retries.labels(kind.value, "durable").inc()

    def waited(self, product: str, waited_ms: float, account: str = "default") -> None:
        """A rate-limiter wait of ``account``, given in ms (recorded in seconds)."""
        self.ratelimit_wait.labels(product, account).observe(max(0.0, waited_ms) / 1000)


# -- the supervisor's side --------------------------------------------------


def prepare_multiproc_dir(path: str | None = None) -> Path:
    """The per-pod directory of the children's metric files, emptied now.

    ``path`` (or ``PROMETHEUS_MULTIPROC_DIR``) if given, else a fresh
    temporary directory. Files of a previous run are removed: their pids
    are gone and their counts belong to another pod life.
    """
    chosen = path or os.environ.get(MULTIPROC_ENV)
    if chosen:
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return directory
    return Path(tempfile.mkdtemp(prefix="cw-metrics-"))


def remove_multiproc_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


class QueueCollector(Collector):
    """Queue depths and set sizes, read at scrape time in one pipelined round trip.

    On a Redis error the gauges are left out and ``connectus_worker_redis_up``
    is 0, so a scrape never fails because Redis does.
    """

    def __init__(self, client: redis.Redis, keys: Keys, queues: Sequence[str]) -> None:
        self.client = client
        self.keys = keys
        self.queues = tuple(queues)

    def collect(self) -> Iterator[Metric]:
        pipe = self.client.pipeline(transaction=False)
        for queue in self.queues:
            pipe.llen(self.keys.queue(queue))
        for key in (self.keys.schedule, self.keys.dead_letters, self.keys.unknown,
                    self.keys.review, self.keys.id_lookups):  # fmt: skip
            pipe.zcard(key)
        up = GaugeMetricFamily(
            "connectus_worker_redis_up", "1 if Redis answered the scrape's queue query, else 0."
        )
        try:
            answers = [int(n) for n in pipe.execute()]
        except redis.RedisError as exc:
            log.warning("metrics.redis_unavailable", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "connectus_worker_queue_messages",
            "Messages waiting on a Dramatiq queue (not yet fetched by a worker).",
            labels=["queue"],
        )
        for queue, n in zip(self.queues, answers, strict=False):
            depth.add_metric([queue], n)
        yield depth
        rest = answers[len(self.queues) :]
        for name, doc, value in (
            ("connectus_worker_scheduled_jobs", "Jobs waiting for their time: scheduled "
             "deliveries, durable retries and deferrals.", rest[0]),
            ("connectus_worker_dead_letter_jobs", "Entries in the dead-letter set "
             "(jobs and poison messages).", rest[1]),
            ("connectus_worker_unknown_jobs", "Jobs with an ambiguous outcome awaiting "
             "reconciliation.", rest[2]),
            ("connectus_worker_review_jobs", "Undecidable jobs held for an operator.", rest[3]),
            ("connectus_worker_id_lookup_jobs", "Sent jobs accepted without a provider id "
             "whose id is being looked up.", rest[4]),
        ):  # fmt: skip
            yield GaugeMetricFamily(name, doc, value=value)


class BreakerCollector(Collector):
    """Each account's breaker scopes, at scrape time: each scope that is not closed (and
    the account scope always) with its state (0 closed, 1 half-open, 2 open), its
    reason, and the end of its open period (epoch s)."""

    def __init__(self, breakers: Sequence[CircuitBreaker]) -> None:
        self.breakers = breakers

    def collect(self) -> Iterator[Metric]:
        try:
            found = [breaker.status() for breaker in self.breakers]
        except redis.RedisError as exc:
            log.warning("metrics.breaker_unavailable", error=str(exc))
            return
        state = GaugeMetricFamily(
            "connectus_worker_breaker_state",
            "Circuit breaker scopes: 0 closed, 1 half-open, 2 open; each scope that is "
            "not closed, and the account scope always.",
            labels=["account", "scope", "reason"],
        )
        until = GaugeMetricFamily(
            "connectus_worker_breaker_open_until_seconds",
            "End of the scope's current or last open period (epoch seconds).",
            labels=["account", "scope"],
        )
        for status in found:
            account = str(status["account"])
            scopes = cast(list[dict[str, Any]], status.get("scopes", []))
            if not any(s["scope"] == "account" for s in scopes):
                state.add_metric([account, "account", ""], 0)
            for scope in scopes:
                name = str(scope["scope"])
                state.add_metric([account, name, str(scope["reason"])],
                                 BREAKER_STATES.get(str(scope["state"]), 2))  # fmt: skip
                until.add_metric([account, name], int(scope["open_until_ms"]) / 1000)
        yield state
        yield until


class SupervisorCollector(Collector):
    """The supervisor's own view: running children and restarts."""

    def __init__(self, children: Callable[[], int], restarts: Callable[[], int]) -> None:
        self.children = children
        self.restarts = restarts

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "connectus_worker_processes", "Worker processes running now.", value=self.children()
        )
        yield CounterMetricFamily(
            "connectus_worker_process_restarts",
            "Worker processes respawned after dying, since the supervisor started.",
            value=self.restarts(),
        )


def supervisor_registry(multiproc_dir: Path | None, collectors: Iterable[Collector]) -> (
    CollectorRegistry
):  # fmt: skip
    """The registry the supervisor serves: the children's merged files, plus ``collectors``."""
    registry = CollectorRegistry()
    if multiproc_dir is not None:
        MultiProcessCollector(registry, path=str(multiproc_dir))  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    return registry
