"""Several Connectus accounts in one worker: each its own client, rate limiter, breaker
and send path (keyed by its name in Redis), picked by the account a job names.

A job of no account is the first account's; a job naming an account this worker does
not have is quarantined with the reason, never sent through another account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import redis

from connectus_worker.config import Settings

T = TypeVar("T")


class ByAccount(dict[str, T]):
    """One object per account name, in the order of ``CONNECTUS_ACCOUNTS`` (first: the
    fallback)."""

    @classmethod
    def of_one(cls, value: T | Mapping[str, T]) -> ByAccount[T]:
        """``value`` by account; a single object is the only (first) account's."""
        return cls(value) if isinstance(value, Mapping) else cls({"": value})

    @property
    def first(self) -> T:
        return next(iter(self.values()))

    def of(self, account: object) -> T:
        """The object of ``account``: the first for none (``None``, ``""``) and when
        the only object has no name (tests); ``KeyError`` for an account not configured."""
        if not account or "" in self:
            return self.first
        return self[str(account)]

    def has(self, account: object) -> bool:
        """Whether a job naming ``account`` can be sent by this worker."""
        return not account or "" in self or account in self


def accounts_status(settings: Settings, client: redis.Redis) -> list[dict[str, Any]]:
    """Each account's pauses and rates, as every pod sees them (the CLI, the console):
    ``[{"account", "breaker": CircuitBreaker.status(), "rates": [RateLimiter.status()]}]``
    in the order of ``CONNECTUS_ACCOUNTS``."""
    from connectus_worker.worker.breaker import CircuitBreaker
    from connectus_worker.worker.ratelimit import RateLimiter

    found = []
    for name in settings.account_names:
        limiter = RateLimiter.from_settings(settings, client, name)
        found.append({
            "account": name,
            "breaker": CircuitBreaker.from_settings(settings, client, name).status(),
            "rates": [limiter.status(product) for product in limiter.limits.buckets],
        })  # fmt: skip
    return found
