"""The circuit breaker: pauses scoped to what failed, shared by every pod through Redis.

One state machine per scope (:mod:`worker.breaker_scopes`): closed -> open (a trip, or
``failure_threshold`` consecutive platform failures of a host) -> half_open (open period
over; at most ``probes`` sends probe it, each with a lease) -> closed after
``successes_to_close`` successes, or open again with a doubled cool-down. How it works,
its Redis keys and why: docs/reliability.md, "Pauses scoped to what failed". Times are
epoch ms; the Lua (``worker/lua/breaker_*.lua``) reads Redis's clock unless ``clock``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis
import structlog

from connectus_worker.config import Settings
from connectus_worker.luascript import load
from connectus_worker.redis import text
from connectus_worker.worker.breaker_scopes import ACCOUNT, HOSTS, QR_SESSION, Target, effect
from connectus_worker.worker.policy import decide

log = structlog.get_logger("connectus_worker.worker.breaker")

State = Literal["closed", "open", "half_open"]

# Per scope: a hash (state, failures, opens, successes, since, open_until, reason) and a
# sorted set of probe leases; an index hash lists the scopes that are not closed.
ALLOW = load(__package__, "breaker_allow.lua")
FAILURE = load(__package__, "breaker_failure.lua")
SUCCESS = load(__package__, "breaker_success.lua")
CLOSE = load(__package__, "breaker_close.lua")


@dataclass(frozen=True, slots=True)
class Decision:
    """May this send go? If not, retry in ``retry_in_ms`` (ms); ``scope`` is the one
    holding it back. ``probe`` is set when the send probes the half-open scopes
    ``probed``: pass the decision back to ``record_*``. ``target`` is what the send
    touches (None: unknown, e.g. Redis did not answer)."""

    allowed: bool
    retry_in_ms: int
    state: State
    reason: str
    probe: str | None = None
    scope: str = ""
    probed: tuple[str, ...] = ()
    target: Target | None = None


class CircuitBreaker:
    """The scoped breakers of one account. Thread-safe: the state is in Redis."""

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
        recheck_ms: Mapping[str, int] | None = None,
    ) -> None:
        self.client, self.account, self.clock = client, account, clock
        self.base = f"{prefix}:breaker:{account}"
        self.index_key = f"{self.base}:scopes"
        self.failure_threshold, self.successes_to_close = failure_threshold, successes_to_close
        self.open_ms, self.max_open_ms = open_ms, max_open_ms
        self.probes, self.probe_lease_ms = probes, probe_lease_ms
        # With cache_ms > 0 a process trusts its last read of the index of
        # scopes that are not closed for cache_ms, and writes at most one
        # success per host and period (that still ends a streak counted by
        # other pods). A failure seen here drops the cache at once.
        self.cache_ms = cache_ms
        self.monotonic = monotonic
        # Scopes that a check outside the breaker may close early (qr_session): a send
        # they hold looks again at least this often (ms), not only when the period ends.
        self.recheck_ms = dict(recheck_ms or {})
        self._lock = threading.Lock()
        self._open: frozenset[str] = frozenset()
        self._fresh_until = 0.0
        self._success_written: dict[str, float] = {}
        self._allow = client.register_script(ALLOW)
        self._failure = client.register_script(FAILURE)
        self._success = client.register_script(SUCCESS)
        self._close = client.register_script(CLOSE)

    @classmethod
    def from_settings(
        cls, settings: Settings, client: redis.Redis, account: str | None = None, **kwargs: Any
    ) -> CircuitBreaker:
        """The breaker of ``account`` (a name of CONNECTUS_ACCOUNTS; None: the first)
        with the ``BREAKER_*`` settings. A send held by ``qr_session`` looks again every
        QR status check (``QR_STATUS_INTERVAL_S``, at least 1 s): the check may close it."""
        if settings.qr_status_interval_s > 0:
            every_ms = int(max(settings.qr_status_interval_s, 1.0) * 1000)
            kwargs.setdefault("recheck_ms", {QR_SESSION: every_ms})
        return cls(
            client,
            prefix=settings.key_prefix,
            account=account or settings.account_names[0],
            failure_threshold=settings.breaker_failure_threshold,
            open_ms=int(settings.breaker_open_s * 1000),
            max_open_ms=int(settings.breaker_max_open_s * 1000),
            probes=settings.breaker_probes,
            probe_lease_ms=int(settings.breaker_probe_lease_s * 1000),
            successes_to_close=settings.breaker_successes_to_close,
            **kwargs,
        )

    def key(self, scope: str) -> str:
        """The Redis hash of ``scope``."""
        return f"{self.base}:{scope}"

    # --- the send path ------------------------------------------------------

    def allow(self, target: Target) -> Decision:
        """May a send to ``target`` go? Closed unless a scope covering it is not closed;
        then one round trip: open → no, until ``open_until``; half-open → a probe
        lease if each such scope has one of its ``probes`` slots free, else no."""
        covering = [s for s in self._not_closed() if target.covered_by(s)]
        if not covering:
            return Decision(True, 0, "closed", "", target=target)
        probe_id = uuid.uuid4().hex
        keys = [self.index_key]
        for scope in covering:
            keys += [self.key(scope), f"{self.key(scope)}:probes"]
        answer = self._allow(
            keys=keys, args=[self._now(), self.probes, self.probe_lease_ms, probe_id, *covering]
        )
        allowed, retry_in, state, scope, reason, probed, changed = answer
        for name in changed:
            log.warning("breaker.half_open", account=self.account, scope=text(name))
        probed_scopes = tuple(text(p) for p in probed)
        retry_in_ms = int(retry_in)
        if text(scope) in self.recheck_ms:
            retry_in_ms = min(retry_in_ms, self.recheck_ms[text(scope)])
        return Decision(
            allowed == 1,
            retry_in_ms,
            cast(State, text(state)),
            text(reason),
            probe_id if probed_scopes else None,
            text(scope),
            probed_scopes,
            target,
        )

    def record_success(self, decision: Decision | None) -> None:
        """The platform took the send: ends its host's streak, and counts towards
        closing each scope it probed (``successes_to_close``)."""
        decision = decision or _UNKNOWN
        target = decision.target
        host = target.host_scope if target is not None else None
        self._record(decision, failed=None, host=host, answered=True)

    def record_failure(self, exc: BaseException, decision: Decision | None) -> None:
        """Feed a send's error; see :func:`worker.breaker_scopes.effect` for what counts."""
        decision = decision or _UNKNOWN
        target = decision.target
        if target is None:  # no allow() answered: only an account-wide trip is known
            kind, scope = ("trip", ACCOUNT) if decide(exc).pause == "account" else ("ignored", "")
        else:
            kind, scope = effect(exc, target)
        if kind == "ignored":  # a bug of ours says nothing about Connectus
            self.release(decision)
            return
        if kind == "answered":
            self._record(decision, failed=None, host=scope, answered=True)
            return
        reason = f"{type(exc).__name__}: {getattr(exc, 'reason', '') or exc}"[:200]
        self._record(decision, failed=(scope, kind == "trip", reason),
                     host=target.host_scope if target and kind == "trip" else None,
                     answered=kind == "trip")  # fmt: skip

    def release(self, decision: Decision | None) -> None:
        """Give back the probe slots of a send that never happened (no outcome)."""
        if decision is None or not decision.probe:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for scope in decision.probed:
                pipe.zrem(f"{self.key(scope)}:probes", decision.probe)
            pipe.execute()

    # --- operators ------------------------------------------------------------

    def close(self, scope: str, *, by: str = "operator") -> str:
        """Close ``scope`` now (an operator, or a check, found the cause fixed);
        returns the state it had."""
        had = text(self._close(keys=self._keys(scope), args=[scope]))
        with self._lock:
            self._fresh_until = 0.0
        log.warning("breaker.closed", account=self.account, scope=scope, by=by, was=had)
        return had

    def trip(self, scope: str, reason: str) -> bool:
        """Open ``scope`` now, without a send (a check found its cause, e.g. the QR
        session's ``GET /status``); True if it opened. An open scope is left as it is;
        a half-open one reopens for longer, as after a failed probe."""
        return self._record(_UNKNOWN, failed=(scope, True, reason[:200]), host=None, answered=True)

    def is_closed(self, scope: str) -> bool:
        """Whether ``scope`` is closed (not listed as open or half-open); one round trip."""
        return not self.client.hexists(self.index_key, scope)

    def status(self) -> dict[str, Any]:
        """Every scope that is not closed (state, reason, since and open_until in epoch ms,
        counters) and each host's current streak; ``state`` is the worst of them."""
        names = sorted(text(s) for s in self.client.hkeys(self.index_key))
        hosts = [f"host:{h}" for h in HOSTS]
        with self.client.pipeline(transaction=False) as pipe:
            for scope in [*names, *hosts]:
                pipe.hgetall(self.key(scope))
            for scope in names:
                pipe.zcard(f"{self.key(scope)}:probes")
            answers = pipe.execute()
        hashes, probes = answers[: len(names) + len(hosts)], answers[len(names) + len(hosts) :]
        raws = [{text(k): text(v) for k, v in a.items()} for a in hashes]
        scopes = [
            {"scope": name, "state": raw["state"], "reason": raw.get("reason", ""),
             "since_ms": int(raw.get("since", 0)), "open_until_ms": int(raw.get("open_until", 0)),
             "consecutive_opens": int(raw.get("opens", 0)), "probes_in_flight": int(n)}
            for name, raw, n in zip(names, raws[: len(names)], probes, strict=True)
            if raw.get("state", "closed") != "closed"  # closed since the index was read
        ]  # fmt: skip
        states = {s["state"] for s in scopes}
        worst = "open" if "open" in states else "half_open" if states else "closed"
        host_raws = zip(hosts, raws[len(names) :], strict=True)
        streaks = {h: int(r.get("failures", 0)) for h, r in host_raws}
        return {"account": self.account, "state": worst, "scopes": scopes,
                "consecutive_failures": streaks}  # fmt: skip

    # --- internals ------------------------------------------------------------

    def _not_closed(self) -> frozenset[str]:
        """The scopes listed as not closed: from Redis, or the local view while fresh."""
        if self.cache_ms and self.monotonic() * 1000 < self._fresh_until:
            return self._open
        names = frozenset(text(s) for s in self.client.hkeys(self.index_key))
        if self.cache_ms:
            with self._lock:
                self._open = names
                self._fresh_until = self.monotonic() * 1000 + self.cache_ms
        return names

    def _record(
        self,
        decision: Decision,
        *,
        failed: tuple[str, bool, str] | None,
        host: str | None,
        answered: bool,
    ) -> bool:
        """One pipelined round trip: the failure of one scope, successes for the rest;
        True if the failure opened its scope.

        The scopes the send probed get a success when the platform answered
        (the error was about another scope) and their probe back otherwise;
        ``host`` gets a success (its streak ends) when the platform answered.
        """
        if failed is not None:  # this process's view of the scopes is stale now
            with self._lock:
                self._fresh_until = 0.0
        now, probe = self._now(), decision.probe or ""
        failed_scope = failed[0] if failed else None
        successes = [s for s in decision.probed if s != failed_scope] if answered else []
        released = [] if answered else [s for s in decision.probed if s != failed_scope]
        if host and host != failed_scope and host not in successes and self._write_success(host):
            successes.append(host)
        if not (failed or successes or released):
            return False
        with self.client.pipeline(transaction=False) as pipe:
            if failed is not None:
                scope, trip, reason = failed
                held = probe if scope in decision.probed else ""
                self._failure(keys=self._keys(scope),
                              args=[now, held, self.failure_threshold, self.open_ms,
                                    self.max_open_ms, int(trip), reason, scope],
                              client=pipe)  # fmt: skip
            for scope in successes:
                held = probe if scope in decision.probed else ""
                self._success(keys=self._keys(scope),
                              args=[now, held, self.successes_to_close, scope],
                              client=pipe)  # fmt: skip
            for scope in released:
                pipe.zrem(f"{self.key(scope)}:probes", probe)
            answers = pipe.execute()
        opened = False
        if failed is not None:
            answer, answers = answers[0], answers[1:]
            opened = text(answer[1]) == "opened"
            if opened:
                log.error("breaker.opened", account=self.account, scope=failed[0],
                          reason=failed[2], open_for_ms=int(answer[2]),
                          consecutive_failures=int(answer[3]))  # fmt: skip
        for scope, answer in zip(successes, answers, strict=False):
            if text(answer[1]) == "closed":
                log.warning("breaker.closed", account=self.account, scope=scope)
        return opened

    def _write_success(self, host: str) -> bool:
        """Whether to write a host's success now: always without a cache; with one, at most
        once per period while the process sees no failure (which drops the cache)."""
        if not self.cache_ms:
            return True
        now = self.monotonic() * 1000
        with self._lock:
            if now < self._fresh_until and self._success_written.get(host, 0.0) >= (
                self._fresh_until - self.cache_ms
            ):
                return False
            self._success_written[host] = now
        return True

    def _keys(self, scope: str) -> list[str]:
        return [self.index_key, self.key(scope), f"{self.key(scope)}:probes"]

    def _now(self) -> str:
        return "" if self.clock is None else str(int(self.clock()))


#: The decision of a send whose allow() did not answer (Redis): nothing is known.
_UNKNOWN = Decision(True, 0, "closed", "")
