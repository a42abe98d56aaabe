"""What one send's outcome tells the breaker and the adaptive rate, and probe release.

Split from :mod:`worker.pipeline` (size guideline). Bookkeeping only: a Redis
error here is logged and swallowed, because an error escaping the actor would
get the message acked before its outcome is recorded.
"""

from __future__ import annotations

import redis
import structlog

from core.models import Kind
from worker.breaker import CircuitBreaker, Decision
from worker.connectus.errors import ConnectusError, RateLimited, Throttled
from worker.metrics import WorkerMetrics
from worker.ratelimit import RateLimiter, product_for

log = structlog.get_logger("worker.pipeline")


class Feedback:
    """Feeds the breaker and the limiter of one pipeline (either may be None)."""

    def __init__(
        self,
        *,
        breaker: CircuitBreaker | None,
        limiter: RateLimiter | None,
        metrics: WorkerMetrics | None,
    ) -> None:
        self.breaker = breaker
        self.limiter = limiter
        self.metrics = metrics

    def observe(self, kind: Kind, exc: ConnectusError | None, decision: Decision | None) -> None:
        """Feed one send's outcome to the breaker and the adaptive rate.

        Bookkeeping only: a Redis error here must not stop the outcome from
        being recorded (an escaping error would get the message acked).
        """
        if self.metrics is not None and isinstance(exc, RateLimited | Throttled):
            self.metrics.throttled(kind)
        try:
            self._feed(kind, exc, decision)
        except redis.RedisError as error:
            log.warning("breaker_or_rate.unavailable", error=str(error))

    def _feed(self, kind: Kind, exc: ConnectusError | None, decision: Decision | None) -> None:
        if self.breaker is not None:
            if exc is None:
                self.breaker.record_success(decision)
            else:
                self.breaker.record_failure(exc, decision)
        if self.limiter is not None:
            if isinstance(exc, RateLimited | Throttled):
                self.limiter.on_throttled(product_for(kind), exc.retry_after_s)
            elif exc is None:
                self.limiter.on_success(product_for(kind))

    def release(self, decision: Decision | None) -> None:
        if self.breaker is not None and decision is not None and decision.probe:
            try:
                self.breaker.release(decision)
            except redis.RedisError as error:  # the probe lease expires by itself
                log.warning("breaker.unavailable", error=str(error))
