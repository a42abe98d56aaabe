"""Finding a sent message again in Connectus's listings.

Each kind names its listing in ``KINDS`` (``lookup``): :class:`Finder` searches it
for a message's destination and keyed content digest. The reconciler
(:mod:`worker.reconcile`) uses it to settle ``unknown`` jobs and to learn the provider
id of jobs Connectus accepted without naming it (the documented SMS answer,
``{"status": "ESME_ROK"}``): docs/connectus-api.md, "The provider id of a send
accepted without one".

An entry (``{prefix}:idlookup:data``) keeps the destination and
:func:`domain.hashing.content_digest` of the content, never the content nor a
plain hash of it. A record already indexed to another job is never taken (the
script checks and takes the index atomically): identical messages to one
number are matched one to one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectus_worker.domain.hashing import content_digest, provider_hash_digest
from connectus_worker.domain.models import Kind
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.connectus.client import ConnectusClient

#: ``provider_id_lookup`` values the send path writes (id_lookup.lua writes the verdicts).
PENDING, NO_LISTING = "pending", "no_listing"

Listed = tuple[str | None, str | None, str | None]  # (provider id, destination, content)

_NOT_DIGITS = re.compile(r"\D")


def entry_of(
    kind: Kind,
    payload: Mapping[str, Any],
    key: bytes,
    account: str | None = None,
    digest: str | None = None,
) -> dict[str, Any] | None:
    """What finds one sent job in its kind's listing, or None when it has none.

    ``key``: the content-digest key (``Settings.content_key``); ``account``: whose
    listings have it (None: the first account's); ``digest``: the content's, when
    the payload has lost its text (an OTP's kept copy).
    """
    spec = kind.spec
    if spec.lookup is None:
        return None
    dst = payload.get(spec.dst_field)
    entry = {
        "kind": kind.value,
        "dst": _digits(dst) if spec.person else None,
        "src": payload.get("src_number"),
        "id_delivery": payload.get("id_delivery"),
        "group": None if spec.person else dst,
        "digest": digest or content_digest(key, str(payload.get(spec.content_field) or "")),
        "account": account,
    }
    return {k: v for k, v in entry.items() if v is not None}


def _digits(value: Any) -> str:
    return _NOT_DIGITS.sub("", str(value or ""))


def listed_digests(key: bytes, content: str) -> list[str]:
    """The keyed digests a listed content stands for: of itself, and of the hash it is
    when it looks like one (an OTP listed as Connectus's plain SHA-256)."""
    digests = [content_digest(key, content)]
    if len(content) == 64 and all(c in "0123456789abcdef" for c in content):
        digests.append(provider_hash_digest(key, content))
    return digests


class LookupCache:
    """One account's Connectus listings for one pass, each fetched at most once."""

    def __init__(self, client: ConnectusClient, zone: ZoneInfo) -> None:
        self.client = client
        self.zone = zone
        self.cache: dict[tuple[str, ...], list[Listed]] = {}

    def _get(self, key: tuple[str, ...], fetch: Callable[[], list[Listed]]) -> list[Listed]:
        if key not in self.cache:
            self.cache[key] = fetch()
        return self.cache[key]

    def sms(self, id_delivery: str | None, created_at: datetime) -> list[Listed]:
        """The delivery's messages, or the report from the day before ``created_at`` to today."""
        if id_delivery:
            return self._get(("delivery", id_delivery), lambda: [
                (m.id, m.dst_number, m.sms_content)
                for m in self.client.v3.sms_delivery_info(id_delivery=id_delivery).messages
            ])  # fmt: skip
        begin = created_at.astimezone(self.zone).date() - timedelta(days=1)
        end = datetime.now(UTC).astimezone(self.zone).date()
        return self._get(("report", begin.isoformat(), end.isoformat()), lambda: [
            (m.id, m.dst_number, m.sms_content)
            for m in self.client.v3.sms_date_report(begin_date=begin, end_date=end)
        ])  # fmt: skip

    def whatsapp(self, src: str, dst: str) -> list[Listed]:
        return self._get(("wa", src, dst), lambda: [
            (m.message_id, m.dst_number, m.whatsapp_content)
            for m in self.client.v3.whatsapp_messages(src_number=src, dst_number=dst)
        ])  # fmt: skip

    def qr(self, number: str) -> list[Listed]:
        return self._get(("qr", number), lambda: [
            (m.message_id, None, m.message) for m in self.client.qr.last_messages(number=number)
            if m.from_me is not False
        ])  # fmt: skip

    def qr_group(self, group_name: str) -> list[Listed]:
        return self._get(("qr_group", group_name), lambda: [
            (m.message_id, None, m.message)
            for m in self.client.qr.last_group_messages(group_name=group_name)
            if m.from_me is not False
        ])  # fmt: skip


class Finder:
    """The ids one pass's listings show for an entry, each listing indexed once."""

    def __init__(self, lookups: LookupCache | Mapping[str, LookupCache], key: bytes) -> None:
        # By account: each job is looked up in its account's listings.
        self.caches = ByAccount.of_one(lookups)
        self.key = key
        self._indexed: dict[int, dict[tuple[str, str], list[str]]] = {}

    def ids(self, entry: Mapping[str, Any], since: datetime) -> Iterator[list[str]]:
        """The ids listed with the entry's destination and digest, listing by listing in
        the order to search them; a listing is fetched only when reached. ``KeyError``:
        the entry's account is not configured here."""
        lookups = self.caches.of(entry.get("account"))
        lookup = Kind(entry["kind"]).spec.lookup
        dst, digest = str(entry.get("dst", "")), entry["digest"]
        if lookup == "sms":
            if entry.get("id_delivery"):
                yield self._match(lookups.sms(entry["id_delivery"], since), dst, digest)
            # Sent again without its delivery once that executed
            # (worker.campaign_deliveries): the day's report has it.
            yield self._match(lookups.sms(None, since), dst, digest)
        elif lookup == "whatsapp":
            yield self._match(lookups.whatsapp(str(entry.get("src", "")), dst), dst, digest)
        # A QR listing is of the number or the group already: not matched on a destination.
        elif lookup == "qr":
            yield self._match(lookups.qr(dst), "", digest)
        elif lookup == "qr_group":
            yield self._match(lookups.qr_group(str(entry.get("group", ""))), "", digest)

    def _match(self, listing: list[Listed], dst: str, digest: str) -> list[str]:
        """Ids in listing order for (destination digits or "", keyed content digest)."""
        by_dst = bool(dst)
        key = id(listing) * 2 + by_dst  # listings live as long as the pass's cache
        index = self._indexed.get(key)
        if index is None:
            index = {}
            for provider_id, listed_dst, content in listing:
                if provider_id is None or content is None:
                    continue
                where = _digits(listed_dst) if by_dst else ""
                for one in listed_digests(self.key, content):
                    index.setdefault((where, one), []).append(provider_id)
            self._indexed[key] = index
        return index.get((dst, digest), [])
