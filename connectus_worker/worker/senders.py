"""Map a job kind to its Connectus call, wrapped in the in-process retry layer."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
import structlog

from connectus_worker.config import Settings
from connectus_worker.domain.models import Kind
from connectus_worker.worker.campaign_deliveries import WITH_DELIVERY, without_executed_delivery
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.metrics import WorkerMetrics
from connectus_worker.worker.policy import decide
from connectus_worker.worker.ratelimit import RateLimiter
from connectus_worker.worker.retry import build_retrying

log = structlog.get_logger("connectus_worker.worker.senders")


class ClientSender:
    """``sender(kind, payload) -> provider id`` (None: the answer named none);
    transient errors are retried in process (tenacity) before they reach the pipeline.

    One ``tenacity.Retrying`` per kind, built once (tenacity keeps each call's state in
    a thread-local, so one object serves every worker thread). ``calls[kind]`` is looked
    up at call time, so a test may replace it.
    """

    def __init__(
        self,
        client: ConnectusClient,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.calls: dict[Kind, Callable[[Mapping[str, Any]], str | None]] = {
            kind: _provider_id(client, kind.spec.call) for kind in Kind
        }
        # A campaign chunk's delivery may have executed before this send: sent again
        # without it (worker.campaign_deliveries).
        for kind in WITH_DELIVERY:
            self.calls[kind] = without_executed_delivery(self.calls[kind])
        self.max_backoff_ms = settings.retry_max_backoff_ms
        self.limiter, self.metrics = limiter, metrics
        self._retrying = {
            kind: build_retrying(
                attempts=settings.retry_attempts,
                initial_backoff_ms=settings.retry_initial_backoff_ms,
                max_backoff_ms=settings.retry_max_backoff_ms,
                sleep=sleep,
                on_retry=self._on_retry(kind),
            )
            for kind in Kind
        }

    def __call__(self, kind: Kind, payload: Mapping[str, Any]) -> str | None:
        return self._retrying[kind](self._call, kind, payload)

    def _call(self, kind: Kind, payload: Mapping[str, Any]) -> str | None:
        """One HTTP call of ``kind``, timed (s) when there are metrics."""
        if self.metrics is None:
            return self.calls[kind](payload)
        with self.metrics.send_duration.labels(kind.value).time():
            return self.calls[kind](payload)

    def _on_retry(self, kind: Kind) -> Callable[[BaseException, int, float], None]:
        def on_retry(exc: BaseException, attempt: int, delay_s: float) -> None:
            log.info("send.retrying", error=type(exc).__name__, reason=getattr(exc, "reason", None),
                     in_process_attempt=attempt, delay_ms=round(delay_s * 1000))  # fmt: skip
            decision = decide(exc)
            account = self.limiter.account if self.limiter else "default"
            if self.metrics is not None:
                self.metrics.retries.labels(kind.value, "in_process").inc()
                if decision.throttled:
                    self.metrics.throttles.labels(kind.value, account).inc()
            if self.limiter is None:
                return
            product = kind.spec.rate_product
            try:
                if decision.throttled:
                    # Lower the shared rate at the first 429, not after the retries.
                    self.limiter.on_throttled(product, decision.retry_after_s)
                # Every HTTP request draws a token, retries included; a refusal
                # (RateLimitRefused) ends the in-process retries.
                got = self.limiter.acquire(product, timeout_s=self.max_backoff_ms / 1000)
                if self.metrics is not None:
                    self.metrics.waited(product, got.waited_ms, account)
            except redis.RedisError as error:
                # Fail open, as before the claim: Redis is needed to record
                # the outcome anyway, and the ledger waits for it there.
                log.warning("ratelimit.unavailable", error=str(error))

        return on_retry


def _provider_id(client: ConnectusClient, call: str) -> Callable[[Mapping[str, Any]], str | None]:
    """The client's method ``call`` (``"v3.send_sms"``) with a payload, answering the
    provider id."""
    method = operator.attrgetter(call)
    return lambda payload: method(client)(**payload).provider_id
