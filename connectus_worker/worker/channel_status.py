"""Delivery statuses and e-mail events of e-mail and WhatsApp jobs, polled at Connectus.

No webhook reports them, so the housekeeper polls the due jobs of the status-watch set
(:mod:`ledger.status_watch`): ``GET /api_v3/email/:id`` (status and ``ABIERTO`` /
``CLICKEADO`` events) or ``GET /api_v3/whatsapp/status``, until a final status (an
e-mail: clicked or undeliverable), for at most ``STATUS_POLL_MAX_AGE_S`` (docs/campaigns.md,
"E-mail and WhatsApp statuses"). Bounded: ``claim_watch.lua`` takes a due job and moves it
one interval later, so it costs one lookup per interval whatever the number of processes;
a pass takes at most ``per_pass`` jobs and stops after ``max_pass_s`` (it runs on the
housekeeping thread). ``channel_status.lua`` records the status and each event once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import redis
import structlog

from connectus_worker.domain.models import Kind
from connectus_worker.ledger.delivery_status import STATUS_RANK, is_final
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.ledger.status_watch import WATCHED_KINDS
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
        self._watch = self.keys.status_watch
        self._stream = f"{self.keys.prefix}:events"  # service.events.events_key

    def run_once(self) -> int:
        """One pass, :data:`BATCH` jobs at a time until ``max_pass_s`` (``monotonic``
        seconds) have passed; returns how many lookups it made."""
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
        state = record.get("state")
        if record.get("kind") not in WATCHED_KINDS or state in _NEVER_SENT:
            return "drop"
        kind = Kind(record["kind"])
        anchor = record.get("sent_at") or max(
            record.get("created_at", "0"), record.get("deliver_at", "0"), key=int
        )
        if now - int(anchor) > self.max_age_ms:
            self._count(kind, "too_old")
            return "drop"
        provider_id = record.get("provider_id")
        if state != "sent" or not provider_id:
            return "wait"
        try:
            client = self.clients.of(self._account(record))
            # The watched kinds are WhatsApp's and the e-mails: each channel its own status call.
            if kind is Kind.WHATSAPP:
                status, events = client.v3.whatsapp_status(message_id=provider_id).status, []
            else:
                email = client.v3.get_email(id_email=provider_id)
                status, events = email.status, [(e.event, e.timestamp or "") for e in email.events]
        except (ConnectusError, KeyError) as exc:  # KeyError: an account not configured
            log.warning("status_poll.failed", job_id=job_id, kind=kind, error=type(exc).__name__)
            self._count(kind, "error")
            return "polled"
        self._save(job_id, kind, provider_id, status, events, now)
        if kind is Kind.WHATSAPP:
            final = is_final(status) or status.upper() in WHATSAPP_FINAL
        else:
            clicked = record.get("email_clicked_at") or any(e == "CLICKEADO" for e, _ in events)
            final = status in EMAIL_DEAD_ENDS or bool(clicked)
        verdict = "final" if final else "polled"
        self._count(kind, verdict)
        return verdict

    def _account(self, record: dict[str, str]) -> str | None:
        """A job's account: its record's, or its campaign's (a campaign job's record has none)."""
        if record.get("account") or not record.get("campaign"):
            return record.get("account")
        return text(self.redis.hget(self.keys.campaign(record["campaign"]), "account") or b"")

    def _save(
        self,
        job_id: str,
        kind: Kind,
        provider_id: str,
        status: str,
        events: list[tuple[str, str]],
        now: int,
    ) -> None:
        args: list[str | int] = [now, self.events_maxlen, status, STATUS_RANK.get(status, 0),
                                 kind.value, provider_id]  # fmt: skip
        seen: set[str] = set()
        for event, timestamp in events:
            field = EVENT_FIELDS.get(event)
            if field is not None and field not in seen:  # the first of each (the open time)
                seen.add(field)
                args += [field, event, timestamp or str(now)]
        answer = self._record(keys=[self.keys.job(job_id), self._stream], args=args)
        if self.metrics is not None:
            if int(answer[0]):
                self.metrics.delivery_statuses.labels(kind.value, status).inc()
            for event in answer[1:]:
                self.metrics.email_events.labels(text(event)).inc()

    def _count(self, kind: Kind, result: str) -> None:
        if self.metrics is not None:
            self.metrics.status_lookups.labels(kind.value, result).inc()
