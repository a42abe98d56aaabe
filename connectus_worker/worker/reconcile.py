"""Reconciliation: settle ``unknown`` jobs by asking Connectus, never by resending blindly.

A job becomes ``unknown`` when its send may have gone through (read timeout,
connection dropped mid-answer, 500/504, a worker killed mid-send). Every
``RECONCILE_INTERVAL_S`` one worker process (a Redis lock elects it) looks for
the jobs unknown for at least ``RECONCILE_AFTER_S`` in their kind's Connectus
listing (``KINDS`` ``lookup``, :class:`worker.id_lookup.Finder`), by destination
and content (an OTP's kept copy has no text: its record's keyed digest stands in):

- **Found**: ``sent`` with Connectus's id. A record already claimed by another
  job (the provider-id index) is not taken twice, so two identical messages
  to one number are matched one to one.
- **Not found** while ``RECONCILE_WINDOW_S`` has not passed since the job became
  unknown: look again next time (Connectus may not list it yet).
- **Definitely not found** after the window: re-queued, same job and
  idempotency key. An OTP is failed instead: its code was not kept, and a
  late code is worse than none.
- **A group message not found** after the window is held for review, never
  resent: the group listing holds only the last messages and may carry no ids, so
  "not listed" does not prove "not sent", and a duplicate reaches the whole group.
- **Undecidable** (e-mail): ``RECONCILE_UNDECIDABLE`` decides: ``review`` (held
  for ``connectus review list|resend|drop``), ``resend`` or ``drop``.
- A lookup that fails (Connectus down) leaves the job for the next pass.

The same pass, over the same listings, looks up the provider id of jobs sent without
one (:meth:`Reconciler.look_up_ids`), and records ``provider_id_lookup`` on each.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from dramatiq import Message

from connectus_worker.domain.hashing import provider_hash_digest
from connectus_worker.domain.models import JobRecord
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.luascript import load
from connectus_worker.redis import text
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError
from connectus_worker.worker.id_lookup import Finder, LookupCache, entry_of

log = structlog.get_logger("connectus_worker.worker.reconcile")

ID_LOOKUP = load(__package__, "id_lookup.lua")
#: Most candidate ids handed to the id-lookup script per job (the first free one is taken).
MAX_CANDIDATES = 200
#: Sent jobs whose provider id is looked up per pass.
ID_LOOKUP_BATCH = 1000


class Reconciler:
    """Settles unknown jobs. Safe to run in every process: the resolve script is
    a no-op for a job that is no longer ``unknown``, and a lock keeps passes apart."""

    def __init__(
        self,
        *,
        store: JobStore,
        client: ConnectusClient | Mapping[str, ConnectusClient],
        after_s: float,
        window_s: float,
        undecidable: str,
        timezone: str,
        lock_ttl_s: float = 15.0,
        batch: int = 200,
        rebuild: Callable[[str], Message[Any] | None] | None = None,
        content_key: bytes,
    ) -> None:
        self.store = store
        self.content_key = content_key  # CONTENT_HASH_KEY
        # Rebuilds a message no copy was kept of (a campaign job swept while
        # in a v1 bulk: one bulk message carries its whole chunk).
        self.rebuild = rebuild
        self.clients = ByAccount.of_one(client)  # a job is looked up in its account's listings
        self.after_ms = int(after_s * 1000)
        self.window_ms = int(window_s * 1000)
        self.undecidable = undecidable
        self.zone = ZoneInfo(timezone)
        self.lock_ttl_ms = int(lock_ttl_s * 1000)
        self.batch = batch
        self.token = uuid.uuid4().hex
        self._resolve_id = store.client.register_script(ID_LOOKUP)

    def run_once(self) -> Counter[str]:
        """One pass over the due unknown jobs; returns what was decided, by outcome."""
        outcomes: Counter[str] = Counter()
        lock = f"{self.store.keys.prefix}:reconcile:lock"
        # The lock only saves duplicate lookups (resolving is atomic and a
        # no-op for a settled job), so a short TTL is safe: a pass cut short
        # by a crash or a Redis outage blocks the others for seconds, not minutes.
        if not self.store.client.set(lock, self.token, nx=True, px=self.lock_ttl_ms):
            return outcomes
        try:
            lookups = ByAccount({n: LookupCache(c, self.zone) for n, c in self.clients.items()})
            finder = Finder(lookups, self.content_key)
            for job_id, since_ms in self.store.unknown_since(
                older_than_ms=self.after_ms, limit=self.batch
            ):
                outcomes[self._settle(job_id, since_ms, finder)] += 1
            self.look_up_ids(lookups)
        finally:
            # Release only our own lock (it may have expired and been taken).
            if self.store.client.get(lock) == self.token.encode():
                self.store.client.delete(lock)
        if outcomes:
            log.info("reconcile.pass", **outcomes)
        return outcomes

    def _settle(self, job_id: str, since_ms: int, finder: Finder) -> str:
        record = self.store.get(job_id)
        message = self.store.held_message(job_id)
        if record is None:
            self.store.client.zrem(self.store.keys.unknown, job_id)
            return "expired"
        if message is None and self.rebuild is not None:
            message = self.rebuild(job_id)
        if message is None:
            # Nothing to compare with or resend: an operator decides.
            self.store.resolve(job_id, "review")
            return "review"
        if record.kind.spec.lookup is None:
            return self._undecidable(record, message)
        try:
            provider_id = self._find(record, message, finder)
        except (ConnectusError, KeyError) as exc:  # KeyError: an account not configured
            log.warning("reconcile.lookup_failed", job_id=job_id, error=type(exc).__name__)
            return "lookup_failed"
        if provider_id is not None:
            self.store.resolve(job_id, "sent", provider_id=provider_id)
            log.info("reconcile.found", job_id=job_id, provider_id=provider_id)
            return "found"
        if self.store.clock() - since_ms < self.window_ms:
            return "pending"
        if not record.kind.spec.person:
            # A group: not listed does not prove not sent (see the module's docstring).
            self.store.resolve(job_id, "review", message=message)
            log.warning("reconcile.review", job_id=job_id, reason="group message not listed")
            return "review"
        if record.kind.spec.otp:
            reason = (
                "ambiguous OTP not found at Connectus; not resent (a late code is worse than none)"
            )
            self.store.resolve(job_id, "fail", error_class="AmbiguousNotResent", reason=reason)
            return "failed"
        self.store.resolve(job_id, "requeue", message=message)
        log.warning("reconcile.requeued", job_id=job_id)
        return "requeued"

    def _undecidable(self, record: JobRecord, message: Message[Any]) -> str:
        if self.undecidable == "resend":
            self.store.resolve(record.job_id, "requeue", message=message)
            return "requeued"
        if self.undecidable == "drop":
            reason = "outcome unknown, no listing to check; dropped (RECONCILE_UNDECIDABLE=drop)"
            self.store.resolve(record.job_id, "fail", error_class="AmbiguousDropped", reason=reason)
            return "failed"
        self.store.resolve(record.job_id, "review", message=message)
        return "review"

    def _find(self, record: JobRecord, message: Message[Any], finder: Finder) -> str | None:
        """The first listed id that no other job has taken (two identical messages to one
        number are matched one to one)."""
        job = message.kwargs["job"]
        account = job.get("account") or record.account
        digest = record.content_hmac if record.kind.spec.otp else None
        entry = entry_of(record.kind, job["payload"], self.content_key, account, digest)
        for ids in finder.ids(entry, record.created_at) if entry else ():
            for provider_id in ids:
                if self.store.job_for_provider_id(provider_id) in (None, record.job_id):
                    return provider_id
        return None

    def look_up_ids(self, lookups: LookupCache | Mapping[str, LookupCache]) -> Counter[str]:
        """The provider ids of the sent jobs due for a lookup; returns the verdicts by name."""
        keys = self.store.keys
        now = self.store.clock()
        rows: list[tuple[bytes, float]] = self.store.client.zrangebyscore(  # type: ignore[assignment]
            keys.id_lookups, "-inf", now - self.after_ms, start=0, num=ID_LOOKUP_BATCH,
            withscores=True,
        )  # fmt: skip
        if not rows:
            return Counter()
        ids = [text(job_id) for job_id, _ in rows]
        entries = self.store.client.hmget(keys.id_lookup_data, ids)
        finder = Finder(lookups, self.content_key)
        pipe = self.store.client.pipeline(transaction=False)
        asked: list[str] = []
        outcomes: Counter[str] = Counter()
        for (member, score), raw in zip(rows, entries, strict=True):
            job_id, sent_ms = text(member), int(score)
            entry = json.loads(raw) if raw else None
            give_up = entry is None or now - sent_ms >= self.window_ms
            found: list[str] = []
            try:
                if entry is not None:
                    if "digest" not in entry:  # written before the digests were keyed
                        entry["digest"] = provider_hash_digest(
                            self.content_key, str(entry.get("sha256"))
                        )
                    sent = datetime.fromtimestamp(sent_ms / 1000, tz=UTC)
                    found = next((ids for ids in finder.ids(entry, sent) if ids), [])
            except (ConnectusError, KeyError) as exc:  # KeyError: an account not configured
                # Connectus down, or a listing it refuses (an unknown delivery is a
                # 404): look again next pass, until the window has passed.
                log.warning("id_lookup.lookup_failed", job_id=job_id, error=type(exc).__name__)
                if not give_up:
                    outcomes["lookup_failed"] += 1
                    continue
            if not found and not give_up:
                outcomes["waiting"] += 1
                continue
            self._resolve_id(
                keys=[keys.job(job_id), keys.id_lookups, keys.id_lookup_data],
                args=[job_id, now, 1 if give_up else 0, self.store.ttl_s, keys.prefix,
                      *found[:MAX_CANDIDATES]],
                client=pipe,
            )  # fmt: skip
            asked.append(job_id)
        for asked_id, answer in zip(asked, pipe.execute(), strict=True):
            verdict = text(answer[0])
            outcomes[verdict] += 1
            if verdict == "found":
                log.info("id_lookup.found", job_id=asked_id, provider_id=text(answer[1]))
            elif verdict == "not_found":
                log.warning("id_lookup.not_found", job_id=asked_id)
        log.info("id_lookup.pass", **outcomes)
        return outcomes
