"""A circuit breaker per Connectus account, shared by every pod through Redis.

State: one hash per account (``{prefix}:breaker:{account}``) plus a sorted
set of probe leases (``...:probes``, member = probe id, score = lease end, ms).
Every transition is one Lua script, so all pods see one state machine::

    closed ──(N consecutive platform failures, or an account error)──► open
    open ──(open_until passed; first allow())──► half_open
    half_open ──(K successes)──► closed
    half_open ──(a failure)──► open, cool-down doubled (up to max_open_s)

What counts (:func:`classify`):

- ``AccountError`` (401/403 bad key, 402/balance exhausted) opens at once:
  every send would fail the same way.
- Platform failures — ``ConnectFailed``, ``ServiceUnavailable`` (502/503),
  ``AmbiguousServerError`` (500/504), ``ResponseTimeout``,
  ``ConnectionDropped`` — count towards ``failure_threshold``.
- Any other answer (success, 4xx, 429, SMPP refusals, malformed bodies)
  shows the platform is up: it ends the run of failures.

Why consecutive failures, not a ratio in a window: one shared counter, no
window to tune, and a deterministic test. Interleaved successes from any pod
reset it, so a platform that half works stays in use (the in-process and
durable retries handle the failing half); an outage, where every send fails,
trips it after ``failure_threshold`` sends.

Half-open admits at most ``probes`` sends at once across all pods, each with
a lease of ``probe_lease_ms``: a probe whose worker was SIGKILLed frees its
slot when the lease ends (Dramatiq's ConcurrentRateLimiter leaks it).

Contract with the pipeline: when :meth:`allow` says no, the job is put back
as a durable retry due in ``retry_in_ms``, *without* counting an attempt
against ``DURABLE_MAX_RETRIES`` and never dead-lettered for it (the message
was not tried; only ``MAX_MESSAGE_AGE_S`` still applies). A probe that ends
without an outcome (e.g. the rate limiter refused it) must be released with
:meth:`release`, or it holds its slot until the lease ends.

Time: epoch ms; by default the scripts read Redis's clock (``TIME``) so pods
share one timeline; tests inject ``clock``. The scripts are in
:mod:`worker.breaker_scripts`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis
import structlog

from config import Settings
from worker.breaker_scripts import ALLOW, FAILURE, SUCCESS
from worker.connectus.errors import (
    AccountError,
    AmbiguousServerError,
    ConnectFailed,
    ConnectionDropped,
    ConnectusError,
    ResponseTimeout,
    ServiceUnavailable,
)

log = structlog.get_logger("worker.breaker")

State = Literal["closed", "open", "half_open"]
PLATFORM_FAILURES = (
    ConnectFailed,
    ServiceUnavailable,
    AmbiguousServerError,
    ResponseTimeout,
    ConnectionDropped,
)


@dataclass(frozen=True, slots=True)
class Decision:
    """May this send go? If not, retry in ``retry_in_ms`` (ms). ``probe`` is set
    when the send is a half-open probe: pass the decision back to ``record_*``."""

    allowed: bool
    retry_in_ms: int
    state: State
    reason: str
    probe: str | None = None


def classify(exc: BaseException) -> Literal["trip", "failure", "answered", "ignored"]:
    """What an error means for the platform's health."""
    if isinstance(exc, AccountError):
        return "trip"
    if isinstance(exc, PLATFORM_FAILURES):
        return "failure"
    return "answered" if isinstance(exc, ConnectusError) else "ignored"


_CLOSED = Decision(True, 0, "closed", "")


class CircuitBreaker:
    """The breaker of one account. Thread-safe: all state is in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        account: str,
        failure_threshold: int = 5,
        open_ms: int = 30_000,
        max_open_ms: int = 600_000,
        probes: int = 1,
        probe_lease_ms: int = 60_000,
        successes_to_close: int = 1,
        clock: Callable[[], int] | None = None,
        cache_ms: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.account, self.clock = client, account, clock
        self.key = f"{prefix}:breaker:{account}"
        self.probes_key = f"{self.key}:probes"
        self.failure_threshold, self.successes_to_close = failure_threshold, successes_to_close
        self.open_ms, self.max_open_ms = open_ms, max_open_ms
        self.probes, self.probe_lease_ms = probes, probe_lease_ms
        # With cache_ms > 0 a process that saw the breaker closed trusts that
        # for cache_ms: no round trip per send while all is well, and at most
        # one success write per period, which still resets a failure run
        # counted by other pods. A failure seen here drops the cache at once.
        self.cache_ms = cache_ms
        self.monotonic = monotonic
        self._closed_until = 0.0
        self._write_success = True
        self._allow = client.register_script(ALLOW)
        self._failure = client.register_script(FAILURE)
        self._success = client.register_script(SUCCESS)

    @classmethod
    def from_settings(
        cls, settings: Settings, client: redis.Redis, **kwargs: Any
    ) -> CircuitBreaker:
        """The breaker of ``CONNECTUS_API_USER`` with the ``BREAKER_*`` settings."""
        return cls(
            client,
            prefix=settings.key_prefix,
            account=settings.connectus_api_user or "default",
            failure_threshold=settings.breaker_failure_threshold,
            open_ms=int(settings.breaker_open_s * 1000),
            max_open_ms=int(settings.breaker_max_open_s * 1000),
            probes=settings.breaker_probes,
            probe_lease_ms=int(settings.breaker_probe_lease_s * 1000),
            successes_to_close=settings.breaker_successes_to_close,
            **kwargs,
        )

    def allow(self) -> Decision:
        """One round trip: closed → yes; open → no, until ``open_until``; half-open → a probe
        lease if one of the ``probes`` slots is free, else no."""
        if self.cache_ms and self.monotonic() * 1000 < self._closed_until:
            return _CLOSED
        probe_id = uuid.uuid4().hex
        answer = self._allow(
            keys=[self.key, self.probes_key],
            args=[self._now(), self.probes, self.probe_lease_ms, probe_id],
        )
        state, allowed, retry_in, reason, probe, changed = (_text(v) for v in answer)
        if changed == "half_open":
            log.warning("breaker.half_open", account=self.account, reason=reason)
        if self.cache_ms and state == "closed":
            self._closed_until = self.monotonic() * 1000 + self.cache_ms
            self._write_success = True
        return Decision(allowed == "1", int(retry_in), cast(State, state), reason, probe or None)

    def record_success(self, decision: Decision | None = None) -> None:
        """The platform answered; closes a half-open breaker after ``successes_to_close``."""
        if self.cache_ms and (decision is None or decision.probe is None):
            if self.monotonic() * 1000 < self._closed_until and not self._write_success:
                return
            self._write_success = False
        answer = self._success(
            keys=[self.key, self.probes_key],
            args=[self._now(), _probe(decision), self.successes_to_close],
        )
        if _text(answer[1]) == "closed":
            log.warning("breaker.closed", account=self.account)

    def record_failure(self, exc: BaseException, decision: Decision | None = None) -> None:
        """Feed a send's error; see :func:`classify` for what counts."""
        kind = classify(exc)
        if kind == "answered":
            self.record_success(decision)
            return
        if kind == "ignored":  # a bug of ours says nothing about Connectus
            self.release(decision)
            return
        reason = f"{type(exc).__name__}: {getattr(exc, 'reason', '') or exc}"[:200]
        self._closed_until = 0.0
        answer = self._failure(
            keys=[self.key, self.probes_key],
            args=[self._now(), _probe(decision), self.failure_threshold, self.open_ms,
                  self.max_open_ms, int(kind == "trip"), reason],
        )  # fmt: skip
        if _text(answer[1]) == "opened":
            log.error(
                "breaker.opened",
                account=self.account,
                reason=reason,
                open_for_ms=int(answer[2]),
                consecutive_failures=int(answer[3]),
            )

    def release(self, decision: Decision | None) -> None:
        """Give back a probe slot whose send never happened (no outcome to record)."""
        if decision is not None and decision.probe:
            self.client.zrem(self.probes_key, decision.probe)

    def status(self) -> dict[str, Any]:
        """State, why it last opened, since and open_until (epoch ms), counters (CLI, logs)."""
        raw = {_text(k): _text(v) for k, v in self.client.hgetall(self.key).items()}
        return {
            "account": self.account,
            "state": raw.get("state", "closed"),
            "reason": raw.get("reason", ""),
            "since_ms": int(raw.get("since", 0)),
            "open_until_ms": int(raw.get("open_until", 0)),
            "consecutive_failures": int(raw.get("failures", 0)),
            "consecutive_opens": int(raw.get("opens", 0)),
            "probes_in_flight": int(self.client.zcard(self.probes_key)),
        }

    def _now(self) -> str:
        return "" if self.clock is None else str(int(self.clock()))


def _probe(decision: Decision | None) -> str:
    return (decision.probe or "") if decision is not None else ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
