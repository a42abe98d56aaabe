"""The one outcome policy: what an error leads to, for every reader.

:func:`decide` maps an error (and the attempt it ended) to a
:class:`Decision`. The single send path (:mod:`worker.pipeline`), the bulk
path (:mod:`worker.bulk`), the in-process retries (:mod:`worker.retry`), the
breaker (:mod:`worker.breaker_scopes`) and the limiter all read it; none of
them looks at the error tree on its own. The tree is drawn in
:mod:`worker.connectus.errors`, the status table in
:mod:`worker.connectus.classify`.

==================  =========  ========  =======================================
error               action     now?      also tells
==================  =========  ========  =======================================
TransientError      retry      yes       ``delay_ms``: backoff, or Retry-After
                                         when longer; ``fail`` once the durable
                                         budget is spent
RateLimited,        retry      yes       the limiter: ``throttled``
Throttled
AccountError        retry      no        the breaker: ``pause`` (its scope);
                                         no budget is spent on a pause
AmbiguousError      unknown    no        reconcile; never resent blindly
PermanentError      fail       no        dead letter with ``reason``
anything else       unknown    no        a bug of ours after the request may
                                         have gone: reconcile; breaker ignores
==================  =========  ========  =======================================

The breaker's host streak counts the errors that say the host did not
answer (``host_failure``); any other Connectus error says it did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from connectus_worker.worker.connectus.errors import (
    AccountError,
    AmbiguousError,
    AmbiguousServerError,
    BalanceExhausted,
    ConnectFailed,
    ConnectionDropped,
    ConnectusError,
    PermanentError,
    ProductDenied,
    RateLimited,
    ResponseTimeout,
    ServiceUnavailable,
    SessionDisconnected,
    Throttled,
    TransientError,
)
from connectus_worker.worker.ratelimit import RateLimitRefused

Action = Literal["retry", "fail", "unknown"]
#: Which breaker scope an error pauses (the scope itself depends on the send's
#: target: :func:`worker.breaker_scopes.effect`).
Pause = Literal["account", "product", "balance", "qr_session"]

#: Errors that say the API host did not answer: one more in its failure streak.
HOST_FAILURES = (
    ConnectFailed,
    ServiceUnavailable,
    AmbiguousServerError,
    ResponseTimeout,
    ConnectionDropped,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Durable (cross-process) retry bounds. Units: ms and s as named."""

    max_retries: int
    min_backoff_ms: int
    max_backoff_ms: int
    max_message_age_s: int
    otp_max_age_s: int = 300  # OTP_MAX_AGE_S; the rule is domain.expiry's

    def retries_for(self, exc: ConnectusError) -> int:
        """Durable retries allowed for ``exc``: ``max_retries``, or fewer where its class
        says so (a refusal that is only often temporary, e.g. ``SubmitRefused``)."""
        budget = exc.max_durable_retries
        return self.max_retries if budget is None else min(budget, self.max_retries)

    def backoff_ms(self, attempt: int, rng: random.Random) -> int:
        """Exponential backoff with full jitter for the given attempt (1-based)."""
        ceiling = min(self.max_backoff_ms, self.min_backoff_ms * 2 ** max(0, attempt - 1))
        return self.min_backoff_ms // 2 + int(rng.random() * (ceiling - self.min_backoff_ms // 2))


@dataclass(frozen=True, slots=True)
class Decision:
    """What one error leads to.

    ``action``: ``retry`` (durable, after ``delay_ms``), ``fail`` (dead letter
    with ``reason``) or ``unknown`` (may have been sent: reconcile).
    ``retry_now``: the in-process layer may try again at once (nothing was sent).
    ``pause``: the breaker scope the error opens at once, if any.
    ``host_failure``: one more in the API host's failure streak.
    ``throttled``: the limiter lowers the shared rate (``retry_after_s``, s).
    ``breaker_ignores``: a bug of ours, which says nothing about Connectus.
    """

    action: Action
    retry_now: bool = False
    delay_ms: int = 0
    reason: str = ""
    pause: Pause | None = None
    host_failure: bool = False
    throttled: bool = False
    retry_after_s: float | None = None
    breaker_ignores: bool = False


def decide(
    error: BaseException,
    attempt: int = 1,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The decision for ``error`` ending durable attempt ``attempt`` (1-based).

    Without a ``policy`` (the breaker, the limiter, the in-process layer) the
    durable budget is not counted and ``delay_ms`` is Retry-After alone.
    """
    if not isinstance(error, ConnectusError):
        return Decision("unknown", reason=f"{type(error).__name__}: {error}",
                        breaker_ignores=True)  # fmt: skip
    host_failure = isinstance(error, HOST_FAILURES)
    if isinstance(error, AmbiguousError):
        return Decision("unknown", reason=error.message, host_failure=host_failure)
    if isinstance(error, PermanentError):
        return Decision("fail", reason=error.message)
    after_ms = int((error.retry_after_s or 0) * 1000)
    backoff = policy.backoff_ms(attempt, rng or random.Random()) if policy is not None else 0
    delay = max(backoff, after_ms)
    if isinstance(error, AccountError):
        return Decision("retry", delay_ms=delay, reason=error.message, pause=_pause_of(error))
    assert isinstance(error, TransientError), f"unclassified Connectus error {error!r}"
    throttled = isinstance(error, RateLimited | Throttled)
    if policy is not None and attempt > policy.retries_for(error):
        reason = f"retries exhausted after {attempt} attempts: {error.message}"
        return Decision("fail", reason=reason, host_failure=host_failure, throttled=throttled,
                        retry_after_s=error.retry_after_s)  # fmt: skip
    return Decision("retry", retry_now=True, delay_ms=delay, reason=error.message,
                    host_failure=host_failure, throttled=throttled,
                    retry_after_s=error.retry_after_s)  # fmt: skip


def _pause_of(error: AccountError) -> Pause:
    if isinstance(error, BalanceExhausted):
        return "balance"
    if isinstance(error, ProductDenied):
        return "product"
    if isinstance(error, SessionDisconnected):
        return "qr_session"
    return "account"  # AuthenticationFailed, OperatorLoginFailed


def unsent_error(refused: RateLimitRefused) -> TransientError:
    """A send that found no rate token (not sent), as the transient error it is."""
    retry_after_s = refused.retry_in_ms / 1000
    return TransientError(str(refused), reason="rate_limited", retry_after_s=retry_after_s)
