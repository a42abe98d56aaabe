"""Admission: a rate-limiter token and the job's claim in one Redis round trip.

The send path used to make two calls before each send: the limiter's
``take`` (:mod:`worker.ratelimit`), then the ledger's ``claim``
(``core/lua/claim.lua``). :data:`ADMIT` runs both in one script:

- no token within the timeout, or the destination capped: nothing is
  claimed; the caller defers the message, as before;
- a token free *now* (the common case while the bucket keeps up): the job
  is claimed in the same step;
- a token reserved for later (``wait_ms`` > 0): nothing is claimed. The caller
  sleeps until the token is earned, then claims alone (a second round trip
  only while the limiter is the bottleneck, when it costs nothing). Waiting
  for a token still holds no lease, so a worker killed while it waits leaves
  no job in ``sending`` to be reconciled.

A token taken for a claim that is then refused (a redelivered job already
``sent``, a ``busy`` one) is not handed back, exactly as with two calls: a
token is capacity, not money, and a refund would let a redelivery storm
borrow capacity from the future. The claim is idempotent on its token, so
repeating the whole call after a lost answer (a Redis blip) claims once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dramatiq import Message

from core.claims import Claim, claimed
from core.jobs import JobStore
from core.luascript import load
from worker.ratelimit import Acquired, RateLimiter

# worker/lua/admit.lua says its KEYS, ARGV and answer; it includes the
# limiter's functions (lib_ratelimit.lua) and the claim (core's lib_claim.lua).
ADMIT = load(__package__, "admit.lua")


@dataclass(frozen=True, slots=True)
class Admitted:
    """A granted token, and the claim when it was made in the same step (else None:
    sleep ``token.waited_ms``, then claim)."""

    token: Acquired
    claim: Claim | None


class Admission:
    """Token + claim in one round trip, for one account's limiter and one job store."""

    def __init__(self, store: JobStore, limiter: RateLimiter) -> None:
        self.store, self.limiter = store, limiter
        self._admit = store.client.register_script(ADMIT)

    def admit(
        self,
        job_id: str,
        *,
        product: str,
        dst: str | None,
        timeout_s: float,
        worker_id: str,
        lease_ms: int,
        token: str,
        message: Message[Any] | None,
    ) -> Admitted:
        """Take one ``product`` token (within ``timeout_s``, s) and, if it is free now, claim.

        Raises :class:`worker.ratelimit.RateLimitRefused` (nothing taken,
        nothing claimed) like :meth:`RateLimiter.acquire`. Never sleeps.
        """
        claim_keys, claim_args = self.store.claim_call(
            job_id, worker_id=worker_id, lease_ms=lease_ms, token=token, message=message
        )
        take_keys, take_args = self.limiter.take_call(product, dst=dst, timeout_s=timeout_s)
        got, claim = self._admit(
            keys=[*claim_keys, *take_keys], args=[*claim_args, *take_args],
            client=self.store.client,
        )  # fmt: skip
        acquired = self.limiter.granted(product, got, timeout_s=timeout_s)
        return Admitted(acquired, claimed(claim) if claim else None)
