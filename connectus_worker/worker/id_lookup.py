"""Provider ids learnt after the send, for jobs Connectus accepted without naming them.

The documented SMS answer (``{"status": "ESME_ROK"}``) names no record, but
webhooks, status polls and reports need Connectus's id: the reconciler's pass
looks it up in the kind's listing (``delivery_info`` or ``date_report``,
``whatsapp/messages``, the QR ``get-last-*messages``; e-mail has none:
``no_listing``) and records ``provider_id_lookup`` on the job. Where each kind
is looked up and what each verdict means: docs/connectus-api.md, "The provider
id of a send accepted without one".

An entry (``{prefix}:idlookup:data``) keeps the destination and
:func:`domain.hashing.content_digest` of the content, never the content nor a
plain hash of it (an entry written before the key, a plain ``sha256``, is
keyed when read). A record already indexed to another job is never taken (the
script checks and takes the index atomically): identical messages to one
number are matched one to one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from connectus_worker.domain.hashing import content_digest, provider_hash_digest
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.luascript import load
from connectus_worker.redis import text
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.connectus.errors import ConnectusError

if TYPE_CHECKING:
    from connectus_worker.worker.reconcile import LookupCache

log = structlog.get_logger("connectus_worker.worker.id_lookup")

#: ``provider_id_lookup`` values on a job record.
PENDING, FOUND, NOT_FOUND, NO_LISTING = "pending", "found", "not_found", "no_listing"

#: Most candidate ids handed to the script per job (the first free one is taken).
MAX_CANDIDATES = 200

_NOT_DIGITS = re.compile(r"\D")
_SCRIPT = load(__package__, "id_lookup.lua")


def lookup_entry(
    kind: Kind, payload: Mapping[str, Any], key: bytes, account: str | None = None
) -> bytes | None:
    """What the lookup of one sent job matches on (JSON), or None when nothing lists it.

    ``key``: the content-digest key (``Settings.content_key``); ``account``: whose
    listings have it (None: the first account's).
    """
    spec = kind.spec
    if not spec.listed:
        return None
    dst = payload.get(spec.dst_field)
    entry = {
        "kind": kind.value,
        "dst": _digits(dst if spec.person else None),
        "src": payload.get("src_number"),
        "id_delivery": payload.get("id_delivery"),
        "group": None if spec.person else dst,
        "digest": content_digest(key, str(payload.get(spec.content_field) or "")),
        "account": account,
    }
    return json.dumps({k: v for k, v in entry.items() if v is not None}).encode()


def _digits(value: Any) -> str:
    return _NOT_DIGITS.sub("", str(value or ""))


class IdLookup:
    """Finds the provider ids of sent jobs that have none yet. Run by the reconciler."""

    def __init__(
        self,
        *,
        store: JobStore,
        after_s: float,
        window_s: float,
        content_key: bytes,
        batch: int = 1000,
    ) -> None:
        self.store = store
        self.content_key = content_key
        self.after_ms = int(after_s * 1000)
        self.window_ms = int(window_s * 1000)
        self.batch = batch
        self._resolve = store.client.register_script(_SCRIPT)

    def run_once(self, lookups: LookupCache | Mapping[str, LookupCache]) -> Counter[str]:
        """One pass over the due jobs; returns the verdicts by name."""
        keys = self.store.keys
        now = self.store.clock()
        rows: list[tuple[bytes, float]] = self.store.client.zrangebyscore(  # type: ignore[assignment]
            keys.id_lookups, "-inf", now - self.after_ms, start=0, num=self.batch,
            withscores=True,
        )  # fmt: skip
        if not rows:
            return Counter()
        ids = [text(job_id) for job_id, _ in rows]
        entries = self.store.client.hmget(keys.id_lookup_data, ids)
        matcher = _Matcher(lookups, self.content_key)
        pipe = self.store.client.pipeline(transaction=False)
        asked: list[str] = []
        outcomes: Counter[str] = Counter()
        for (member, score), raw in zip(rows, entries, strict=True):
            job_id, sent_ms = text(member), int(score)
            entry = json.loads(raw) if raw else None
            give_up = entry is None or now - sent_ms >= self.window_ms
            try:
                found = matcher.candidates(entry, sent_ms) if entry else []
            except (ConnectusError, KeyError) as exc:  # KeyError: an account not configured
                # Connectus down, or a listing it refuses (an unknown delivery is a
                # 404): look again next pass, until the window has passed.
                log.warning("id_lookup.lookup_failed", job_id=job_id, error=type(exc).__name__)
                if not give_up:
                    outcomes["lookup_failed"] += 1
                    continue
                found = []
            if not found and not give_up:
                outcomes["waiting"] += 1
                continue
            self._resolve(
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


class _Matcher:
    """Candidate ids for an entry, from one pass's listings (each hashed once)."""

    def __init__(self, lookups: LookupCache | Mapping[str, LookupCache], key: bytes) -> None:
        # By account: each job is looked up in its account's listings.
        self.caches = ByAccount.of_one(lookups)
        self.key = key
        self._indexed: dict[int, dict[tuple[str, str], list[str]]] = {}

    def candidates(self, entry: Mapping[str, Any], sent_ms: int) -> list[str]:
        lookups = self.caches.of(entry.get("account"))
        kind = Kind(entry["kind"])
        dst = str(entry.get("dst", ""))
        # Entries written before the digests were keyed carry a plain "sha256".
        digest = entry.get("digest") or provider_hash_digest(self.key, str(entry.get("sha256")))
        if kind in (Kind.SMS, Kind.OTP):
            sent = datetime.fromtimestamp(sent_ms / 1000, tz=UTC)
            listing = lookups.sms(entry.get("id_delivery"), sent)
            if entry.get("id_delivery"):
                found = self._index(listing, by_dst=True).get((dst, digest), [])
                if found:
                    return found
                # Sent again without its delivery once that executed
                # (worker.campaign_deliveries): the day's report has it.
                listing = lookups.sms(None, sent)
        elif kind is Kind.WHATSAPP:
            listing = lookups.whatsapp(str(entry.get("src", "")), dst)
        elif kind is Kind.WHATSAPP_QR_GROUP:
            listing = lookups.qr_group(str(entry.get("group", "")))
            dst = ""  # the group's listing is of this group already
        else:
            listing = lookups.qr(dst)
            dst = ""  # the QR listing is of this number already
        return self._index(listing, by_dst=bool(dst)).get((dst, digest), [])

    def _index(
        self, listing: list[tuple[str | None, str | None, str | None]], *, by_dst: bool
    ) -> dict[tuple[str, str], list[str]]:
        """(destination digits, keyed content digest) -> ids in listing order, built once."""
        key = id(listing) * 2 + by_dst  # listings live as long as the pass's cache
        index = self._indexed.get(key)
        if index is None:
            index = {}
            for provider_id, dst, content in listing:
                if provider_id is None or content is None:
                    continue
                where = _digits(dst) if by_dst else ""
                for digest in listed_digests(self.key, content):
                    index.setdefault((where, digest), []).append(provider_id)
            self._indexed[key] = index
        return index


def listed_digests(key: bytes, content: str) -> list[str]:
    """The keyed digests a listed content stands for: of itself, and of the hash it is
    when it looks like one (an OTP listed as Connectus's plain SHA-256)."""
    digests = [content_digest(key, content)]
    if len(content) == 64 and all(c in "0123456789abcdef" for c in content):
        digests.append(provider_hash_digest(key, content))
    return digests
