"""Delivery statuses and e-mail events of e-mail and WhatsApp jobs, polled at Connectus.

No webhook reports them, so the housekeeper polls the due jobs of the
status-watch set (:mod:`ledger.status_watch`): ``GET /api_v3/email/:id`` (status
and ``ABIERTO``/``CLICKEADO`` events) or ``GET /api_v3/whatsapp/status``, until
a final status (an e-mail: until clicked or undeliverable), for at most
``STATUS_POLL_MAX_AGE_S``. The table, the limits and what is recorded:
docs/campaigns.md, "E-mail and WhatsApp statuses".

Bounded: a due job is taken and moved one interval later in one script
(``claim_watch.lua``), so it costs at most one lookup per interval whatever the
number of processes; a pass takes at most ``per_pass`` jobs and stops after
``max_pass_s`` (it runs on the housekeeping thread). The status and each event
are recorded once, with their events-stream entries, in ``channel_status.lua``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis
import structlog

from connectus_worker.domain.models import Kind
from connectus_worker.ledger.delivery_status import STATUS_RANK, is_final
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.ledger.status_watch import WATCHED_KINDS, watch_key
from connectus_worker.luascript import load
from connectus_worker.redis import text
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError
from connectus_worker.worker.metrics import WorkerMetrics

log = structlog.get_logger("connectus_worker.worker.channel_status")

_CLAIM = load(__package__, "claim_watch.lua")
_RECORD = load(__package__, "channel_status.lua")

#: Jobs taken from the watch set at a time (a pass stops between batches).
BATCH = 20
#: The record field of each e-mail event (its first occurrence).
EVENT_FIELDS = {"ABIERTO": "email_opened_at", "CLICKEADO": "email_clicked_at"}
#: E-mail statuses after which nothing more comes (no open or click).
EMAIL_DEAD_ENDS = frozenset({"NO_ENTREGABLE", "NUMERO_INVALIDO"})
#: WhatsApp final statuses: the platform's, and the usual WhatsApp names
#: (the documents give no list; a real answer may use them).
WHATSAPP_FINAL = frozenset({"DELIVERED", "READ", "FAILED", "UNDELIVERED", "REJECTED"})
#: States after which a job will never have a status to look up.
_NEVER_SENT = frozenset({"failed", "cancelled", "expired"})
_FIELDS = ("kind", "state", "provider_id", "sent_at", "created_at", "deliver_at",
           "email_clicked_at", "account", "campaign")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Polled:
    status: str
    events: tuple[tuple[str, str], ...]  # (event, timestamp)


class ChannelStatusPoller:
    """One :meth:`run_once` per housekeeping status tick."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        client: ConnectusClient | Mapping[str, ConnectusClient],
        interval_s: int,
        max_age_s: int,
        events_maxlen: int,
        per_pass: int = 200,
        clock: Callable[[], int] = epoch_ms,
        metrics: WorkerMetrics | None = None,
        max_pass_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis: redis.Redis = jobs.client
        self.keys = jobs.keys
        self.clients = ByAccount.of_one(client)  # each job's own account's
        self.interval_ms = interval_s * 1000
        self.max_age_ms = max_age_s * 1000
        self.events_maxlen = events_maxlen
        self.per_pass = per_pass
        self.clock = clock
        self.metrics = metrics
        self.max_pass_s = max_pass_s
        self.monotonic = monotonic
        self._claim = self.redis.register_script(_CLAIM)
        self._record = self.redis.register_script(_RECORD)
        self._watch = watch_key(self.keys)
        self._stream = f"{self.keys.prefix}:events"  # service.events.events_key

    def run_once(self) -> int:
        """One pass; returns how many lookups it made.

        The housekeeper thread also promotes due jobs and pumps campaigns, so a
        pass stops taking jobs after ``max_pass_s`` (``monotonic`` seconds): jobs
        are taken :data:`BATCH` at a time, and the rest wait for the next tick.
        """
        started = self.monotonic()
        lookups = taken_total = 0
        while taken_total < self.per_pass and self.monotonic() - started < self.max_pass_s:
            now = self.clock()
            batch = min(BATCH, self.per_pass - taken_total)
            claimed = self._claim(keys=[self._watch], args=[now, now + self.interval_ms, batch])
            taken = [text(j) for j in claimed]
            if not taken:
                break
            taken_total += len(taken)
            lookups += self._batch(taken, now)
        return lookups

    def _batch(self, taken: list[str], now: int) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in taken:
            pipe.hmget(self.keys.job(job_id), _FIELDS)
        done: list[str] = []
        lookups = 0
        for job_id, values in zip(taken, pipe.execute(), strict=True):
            record = {n: text(v) for n, v in zip(_FIELDS, values, strict=True) if v is not None}
            verdict = self._one(job_id, record, now)
            lookups += verdict in ("polled", "final")
            if verdict in ("final", "drop"):
                done.append(job_id)
        if done:
            self.redis.zrem(self._watch, *done)
        return lookups

    def _one(self, job_id: str, record: dict[str, str], now: int) -> str:
        """``drop`` (never looked up again), ``wait`` (not sent yet), ``polled`` or ``final``."""
        kind = record.get("kind")
        state = record.get("state")
        if kind not in WATCHED_KINDS or state in _NEVER_SENT:
            return "drop"
        anchor = record.get("sent_at") or max(
            record.get("created_at", "0"), record.get("deliver_at", "0"), key=int
        )
        if now - int(anchor) > self.max_age_ms:
            self._count(Kind(kind), "too_old")
            return "drop"
        provider_id = record.get("provider_id")
        if state != "sent" or not provider_id:
            return "wait"
        try:
            polled = self.lookup(Kind(kind), provider_id, self._account(record))
        except (ConnectusError, KeyError) as exc:  # KeyError: an account not configured
            log.warning("status_poll.failed", job_id=job_id, kind=kind, error=type(exc).__name__)
            self._count(Kind(kind), "error")
            return "polled"
        self._save(job_id, Kind(kind), provider_id, polled, now)
        clicked = record.get("email_clicked_at") or any(e == "CLICKEADO" for e, _ in polled.events)
        final = _final(Kind(kind), polled.status, bool(clicked))
        self._count(Kind(kind), "final" if final else "polled")
        return "final" if final else "polled"

    def _account(self, record: dict[str, str]) -> str | None:
        """A job's account: its record's, or its campaign's (a campaign job's record has none)."""
        if record.get("account") or not record.get("campaign"):
            return record.get("account")
        return text(self.redis.hget(self.keys.campaign(record["campaign"]), "account") or b"")

    def lookup(self, kind: Kind, provider_id: str, account: str | None = None) -> Polled:
        """One status call for one job (see the module table), at ``account`` (None: the first)."""
        client = self.clients.of(account)
        if kind is Kind.WHATSAPP:
            wa = client.v3.whatsapp_status(message_id=provider_id)
            return Polled(wa.status, ())
        email = client.v3.get_email(id_email=provider_id)
        events = tuple((e.event, e.timestamp or "") for e in email.events)
        return Polled(email.status, events)

    def _save(self, job_id: str, kind: Kind, provider_id: str, polled: Polled, now: int) -> None:
        rank = STATUS_RANK.get(polled.status, 0)
        args: list[str | int] = [now, self.events_maxlen, polled.status, rank, kind.value,
                                 provider_id]  # fmt: skip
        seen: set[str] = set()
        for event, timestamp in polled.events:
            field = EVENT_FIELDS.get(event)
            if field is not None and field not in seen:  # the first of each (the open time)
                seen.add(field)
                args += [field, event, timestamp or str(now)]
        answer = self._record(keys=[self.keys.job(job_id), self._stream], args=args)
        if self.metrics is not None:
            if int(answer[0]):
                self.metrics.delivery_status(kind, polled.status)
            for event in answer[1:]:
                self.metrics.email_event(text(event))

    def _count(self, kind: Kind, result: str) -> None:
        if self.metrics is not None:
            self.metrics.status_lookup(kind, result)


def _final(kind: Kind, status: str, clicked: bool) -> bool:
    if kind is Kind.WHATSAPP:
        return is_final(status) or status.upper() in WHATSAPP_FINAL
    return status in EMAIL_DEAD_ENDS or clicked
