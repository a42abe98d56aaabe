"""Reconciliation: settle ``unknown`` jobs by asking Connectus, never by resending blindly.

A job becomes ``unknown`` when its send may have gone through (read timeout,
connection dropped mid-answer, 500/504, a worker killed mid-send). Every
``RECONCILE_INTERVAL_S`` one worker process (a Redis lock elects it) looks at
the jobs that have been unknown for at least ``RECONCILE_AFTER_S``:

================  ============================================================
kind              lookup handle
================  ============================================================
sms, otp          ``delivery_info`` of the job's ``id_delivery`` when it has one,
                  else ``date_report`` for the days since the job was created;
                  matched on destination and content (SMS: the text or its
                  SHA-256; OTP: the kept copy has no text, so the record's
                  keyed ``content_hmac`` is compared with the keyed form of
                  the plain SHA-256 Connectus lists with ``save_content=hash``)
whatsapp          ``whatsapp/messages`` of (src_number, dst_number), by content
whatsapp_qr       QR ``get-last-messages`` of the number, by content
whatsapp_qr_group QR ``get-last-group-messages`` of the group, by content
email, otp_email  none: Connectus has no listing (undecidable)
================  ============================================================

- **Found**: ``sent`` with Connectus's id. A record already claimed by another
  job (the provider-id index) is not taken twice, so two identical messages
  to one number are matched one to one.
- **Not found** while ``RECONCILE_WINDOW_S`` has not passed since the job became
  unknown: look again next time (Connectus may not list it yet).
- **Definitely not found** after the window: re-queued, same job and
  idempotency key. An OTP is failed instead: its code was not kept, and a
  late code is worse than none.
- **A group message not found** after the window is held for review
  (``connectus review list|resend|drop``), never resent: the group listing
  holds only the last messages (a busy group's may have scrolled out), and its
  entries may carry no id, so "not listed" does not prove "not sent", and a
  duplicate reaches every member of the group.
- **Undecidable** (e-mail): ``RECONCILE_UNDECIDABLE`` decides: ``review`` (held
  for ``connectus review list|resend|drop``), ``resend`` or ``drop``.
- A lookup that fails (Connectus down) leaves the job for the next pass.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from dramatiq import Message

from connectus_worker.domain.hashing import content_hash
from connectus_worker.domain.models import JobRecord, Kind
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.errors import ConnectusError
from connectus_worker.worker.id_lookup import IdLookup, listed_digests

log = structlog.get_logger("connectus_worker.worker.reconcile")

Candidate = tuple[str | None, str | None, str | None]  # (provider id, destination, content)


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
        id_lookup: IdLookup | None = None,
        content_key: bytes,
    ) -> None:
        self.store = store
        # Key of the records' content digests (CONTENT_HASH_KEY), for OTPs.
        self.content_key = content_key
        # Sent jobs whose provider id is looked up in the same pass and listings.
        self.id_lookup = id_lookup
        # Rebuilds a message no copy was kept of (a campaign job swept while
        # in a v1 bulk: one bulk message carries its whole chunk).
        self.rebuild = rebuild
        # By account (CONNECTUS_ACCOUNTS): a job is looked up in its account's listings.
        self.clients = ByAccount.of_one(client)
        self.after_ms = int(after_s * 1000)
        self.window_ms = int(window_s * 1000)
        self.undecidable = undecidable
        self.zone = ZoneInfo(timezone)
        self.lock_ttl_ms = int(lock_ttl_s * 1000)
        self.batch = batch
        self.token = uuid.uuid4().hex

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
            for job_id, since_ms in self.store.unknown_since(
                older_than_ms=self.after_ms, limit=self.batch
            ):
                outcomes[self._settle(job_id, since_ms, lookups)] += 1
            if self.id_lookup is not None:
                self.id_lookup.run_once(lookups)
        finally:
            # Release only our own lock (it may have expired and been taken).
            if self.store.client.get(lock) == self.token.encode():
                self.store.client.delete(lock)
        if outcomes:
            log.info("reconcile.pass", **outcomes)
        return outcomes

    def _settle(self, job_id: str, since_ms: int, caches: ByAccount[LookupCache]) -> str:
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
        payload: dict[str, Any] = message.kwargs["job"]["payload"]
        if record.kind in (Kind.EMAIL, Kind.OTP_EMAIL):
            return self._undecidable(record, message)
        try:
            account = message.kwargs["job"].get("account") or record.account
            provider_id = self._find(record, payload, caches.of(account))
        except (ConnectusError, KeyError) as exc:  # KeyError: an account not configured
            log.warning("reconcile.lookup_failed", job_id=job_id, error=type(exc).__name__)
            return "lookup_failed"
        if provider_id is not None:
            self.store.resolve(job_id, "sent", provider_id=provider_id)
            log.info("reconcile.found", job_id=job_id, provider_id=provider_id)
            return "found"
        if self.store.clock() - since_ms < self.window_ms:
            return "pending"
        if record.kind is Kind.WHATSAPP_QR_GROUP:
            # Not listed does not prove not sent (see the module's docstring).
            self.store.resolve(job_id, "review", message=message)
            log.warning("reconcile.review", job_id=job_id, reason="group message not listed")
            return "review"
        if record.kind.is_otp:
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

    def _find(self, record: JobRecord, payload: dict[str, Any], lookups: LookupCache) -> str | None:
        if record.kind in (Kind.SMS, Kind.OTP):
            found = self._find_sms(
                record, payload, lookups.sms(payload.get("id_delivery"), record.created_at)
            )
            if found is None and payload.get("id_delivery"):
                # Sent again without its delivery once that executed
                # (worker.campaign_deliveries): the day's report has it.
                found = self._find_sms(record, payload, lookups.sms(None, record.created_at))
            return found
        return self._find_other(record, payload, lookups)

    def _find_sms(
        self, record: JobRecord, payload: dict[str, Any], candidates: Iterable[Candidate]
    ) -> str | None:
        if record.kind is Kind.OTP:
            # The kept copy of an OTP has no text: the record's keyed digest
            # is compared with each listed content keyed the same way (the
            # plain SHA-256 Connectus lists is computed or read, never stored).
            kept = record.content_hmac
            return self._first_free(
                candidates, payload["dst_number"], job_id=record.job_id,
                matches=lambda listed: kept is not None and listed is not None
                and kept in listed_digests(self.content_key, listed),
            )  # fmt: skip
        content = payload.get("sms_content")
        want = {content, content_hash(content)} if content else {content}
        return self._first_free(
            candidates,
            payload["dst_number"],
            job_id=record.job_id,
            matches=want.__contains__,
        )

    def _find_other(
        self, record: JobRecord, payload: dict[str, Any], lookups: LookupCache
    ) -> str | None:
        if record.kind is Kind.WHATSAPP:
            candidates = lookups.whatsapp(payload["src_number"], payload["dst_number"])
            text = payload["whatsapp_content"]
            return self._first_free(
                candidates,
                payload["dst_number"],
                job_id=record.job_id,
                matches=lambda listed: listed == text,
            )
        if record.kind is Kind.WHATSAPP_QR_GROUP:
            candidates = lookups.qr_group(payload["group_name"])
            group_text = payload["message"]
            return self._first_free(
                candidates, None, job_id=record.job_id, matches=lambda listed: listed == group_text
            )
        candidates = lookups.qr(payload["number"])
        message = payload["message"]
        return self._first_free(
            candidates, None, job_id=record.job_id, matches=lambda listed: listed == message
        )

    def _first_free(
        self,
        candidates: Iterable[Candidate],
        dst: str | None,
        *,
        job_id: str,
        matches: Callable[[str | None], bool],
    ) -> str | None:
        for provider_id, candidate_dst, content in candidates:
            if provider_id is None or not matches(content):
                continue
            if dst is not None and candidate_dst != dst:
                continue
            owner = self.store.job_for_provider_id(provider_id)
            if owner in (None, job_id):
                return provider_id
        return None


class LookupCache:
    """Connectus lookups for one pass, each made at most once."""

    def __init__(self, client: ConnectusClient, zone: ZoneInfo) -> None:
        self.client = client
        self.zone = zone
        self.cache: dict[tuple[str, ...], list[Candidate]] = {}

    def _get(self, key: tuple[str, ...], fetch: Callable[[], list[Candidate]]) -> list[Candidate]:
        if key not in self.cache:
            self.cache[key] = fetch()
        return self.cache[key]

    def sms(self, id_delivery: str | None, created_at: datetime) -> list[Candidate]:
        if id_delivery:
            return self._get(("delivery", id_delivery), lambda: [
                (m.id, m.dst_number, m.sms_content)
                for m in self.client.v3.sms_delivery_info(id_delivery=id_delivery).messages
            ])  # fmt: skip
        begin = created_at.astimezone(self.zone).date() - timedelta(days=1)
        end = datetime.now(UTC).astimezone(self.zone).date()
        return self._get(
            ("report", begin.isoformat(), end.isoformat()), lambda: self._report(begin, end)
        )

    def _report(self, begin: date, end: date) -> list[Candidate]:
        records = self.client.v3.sms_date_report(begin_date=begin, end_date=end)
        return [(m.id, m.dst_number, m.sms_content) for m in records]

    def whatsapp(self, src: str, dst: str) -> list[Candidate]:
        return self._get(("wa", src, dst), lambda: [
            (m.message_id, m.dst_number, m.whatsapp_content)
            for m in self.client.v3.whatsapp_messages(src_number=src, dst_number=dst)
        ])  # fmt: skip

    def qr(self, number: str) -> list[Candidate]:
        return self._get(("qr", number), lambda: [
            (m.message_id, None, m.message) for m in self.client.qr.last_messages(number=number)
            if m.from_me is not False
        ])  # fmt: skip

    def qr_group(self, group_name: str) -> list[Candidate]:
        return self._get(("qr_group", group_name), lambda: [
            (m.message_id, None, m.message)
            for m in self.client.qr.last_group_messages(group_name=group_name)
            if m.from_me is not False
        ])  # fmt: skip
