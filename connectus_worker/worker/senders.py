"""Map a job kind to its Connectus call, wrapped in the in-process retry layer."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
import structlog
import tenacity

from connectus_worker.config import Settings
from connectus_worker.domain.models import Kind
from connectus_worker.worker.campaign_deliveries import WITH_DELIVERY, without_executed_delivery
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.metrics import WorkerMetrics
from connectus_worker.worker.policy import decide
from connectus_worker.worker.ratelimit import RateLimiter, product_for
from connectus_worker.worker.retry import build_retrying

log = structlog.get_logger("connectus_worker.worker.senders")


class ClientSender:
    """``sender(kind, payload) -> provider id`` (None: the answer named none);
    transient errors are retried in process (tenacity) before they reach the pipeline.

    Everything a send needs is built once here, not per message: one
    ``tenacity.Retrying`` per kind (tenacity keeps each call's state in a
    thread-local, so one object serves every worker thread) and the timed
    call of each kind. ``calls[kind]`` is looked up at call time, so a test
    may replace it.
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
        self.attempts = settings.retry_attempts
        self.initial_backoff_ms = settings.retry_initial_backoff_ms
        self.max_backoff_ms = settings.retry_max_backoff_ms
        self.sleep = sleep
        self.limiter = limiter
        self.metrics = metrics
        self._retrying: dict[Kind, tenacity.Retrying] = {
            kind: build_retrying(
                attempts=self.attempts,
                initial_backoff_ms=self.initial_backoff_ms,
                max_backoff_ms=self.max_backoff_ms,
                sleep=self._sleep,
                on_retry=self._on_retry(kind),
            )
            for kind in Kind
        }
        self._attempt: dict[Kind, Callable[[Mapping[str, Any]], str | None]] = {
            kind: self._timed(kind) for kind in Kind
        }

    def __call__(self, kind: Kind, payload: Mapping[str, Any]) -> str | None:
        return self._retrying[kind](self._attempt[kind], payload)

    def _sleep(self, seconds: float) -> None:
        # Looked up per call: ``sender.sleep`` may be replaced after construction.
        self.sleep(seconds)

    def _on_retry(self, kind: Kind) -> Callable[[BaseException, int, float], None]:
        def on_retry(exc: BaseException, attempt: int, delay_s: float) -> None:
            log.info(
                "send.retrying",
                error=type(exc).__name__,
                reason=getattr(exc, "reason", None),
                in_process_attempt=attempt,
                delay_ms=round(delay_s * 1000),
            )
            decision = decide(exc)
            throttled = decision.throttled
            account = self.limiter.account if self.limiter else "default"
            if self.metrics is not None:
                self.metrics.retried_in_process(kind)
                if throttled:
                    self.metrics.throttled(kind, account)
            if self.limiter is None:
                return
            product = product_for(kind)
            try:
                if throttled:
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

    def _timed(self, kind: Kind) -> Callable[[Mapping[str, Any]], str | None]:
        """The HTTP call of ``kind``, timed (each attempt, s) when there are metrics."""
        calls, metrics = self.calls, self.metrics
        if metrics is None:
            return lambda payload: calls[kind](payload)
        observe = metrics.observe_send

        def timed(payload: Mapping[str, Any]) -> str | None:
            started = time.perf_counter()
            try:
                return calls[kind](payload)
            finally:
                observe(kind, time.perf_counter() - started)

        return timed


def _provider_id(client: ConnectusClient, call: str) -> Callable[[Mapping[str, Any]], str | None]:
    """The client's method ``call`` (``"v3.send_sms"``) with a payload, answering the
    provider id."""
    method = operator.attrgetter(call)
    return lambda payload: method(client)(**payload).provider_id
