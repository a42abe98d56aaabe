"""Campaigns from producers: preflight a recipient list, then accept it.

Accepting streams the rows once: check and deduplicate
(:class:`core.campaign.checker.RowChecker`), store them as chunks
(:meth:`core.campaign.store.CampaignStore.write_chunks`), and commit the
campaign record in one script at the end. A list refused on the way (bad
rows without ``skip_invalid``, a cost over the balance without ``force``)
has its chunks deleted; a crash leaves only orphan chunks with a TTL. No job
record and no Dramatiq message exists until the workers release a chunk,
shortly before sending it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from config import Settings
from core.campaign.checker import InvalidRow, Recipient, RowChecker
from core.campaign.model import Campaign, CampaignState, Transport
from core.campaign.source import Row, read_rows, rows_from_iterable
from core.campaign.store import CHUNK_SIZE, CampaignStore, Created
from core.jobs import epoch_ms
from core.keys import Keys
from core.models import Kind
from core.redis import connect
from core.validation import validate_idempotency_key
from producers.campaign_plan import (
    BalanceLookup,
    CampaignOptions,
    CampaignPlan,
    Resolved,
    country_of,
    resolve,
)


class CampaignRefused(ValueError):
    """The campaign was not accepted; ``plan`` says why (``plan.refusals``)."""

    def __init__(self, plan: CampaignPlan) -> None:
        self.plan = plan
        super().__init__("campaign refused: " + "; ".join(plan.refusals))


@dataclass(frozen=True)
class Accepted:
    campaign_id: str
    created: bool  # False: the idempotency key named an existing campaign
    plan: CampaignPlan


Source = Path | str | Iterable[Mapping[str, object]]


class CampaignProducer:
    """Preflights and accepts campaigns. Build one per process and reuse it."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis_client: redis.Redis | None = None,
        balance: BalanceLookup | None = None,
        clock: Callable[[], int] = epoch_ms,
    ) -> None:
        self.settings = settings
        self.redis = redis_client or connect(settings)
        self.store = CampaignStore(
            self.redis,
            Keys(settings.key_prefix),
            ttl_s=settings.campaign_ttl_s,
            job_ttl_s=settings.job_ttl_s,
            clock=clock,
        )
        self.balance = balance

    def preflight(self, source: Source, options: CampaignOptions) -> CampaignPlan:
        """What :meth:`send` would do with this list, without storing anything."""
        resolved = resolve(options, self.settings)
        plan, rows = self._plan(resolved, source)
        for _ in rows:  # the checker fills the plan's report as rows are pulled
            pass
        self._finish_plan(plan, resolved)
        return plan

    def send(
        self,
        source: Source,
        options: CampaignOptions,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Accepted:
        """Accept the campaign: store its recipients and schedule it.

        Raises :class:`core.validation.InvalidInput` for bad options,
        :class:`CampaignRefused` for a list that fails preflight, and
        :class:`core.campaign.store.CampaignConflict` for an idempotency key
        already used by a different campaign.
        """
        resolved = resolve(options, self.settings)
        key = options.idempotency_key
        if key is not None:
            validate_idempotency_key(key)
        campaign_id = uuid.uuid4().hex[:16]
        plan, rows = self._plan(resolved, source)
        digest = hashlib.sha256(_definition(resolved).encode())
        stored = 0
        pulled = 0  # rows handed to write_chunks: its chunks so far cover no more

        def chunk_rows() -> Iterator[list[str]]:
            nonlocal pulled
            for row in rows:
                # Unit separator between values, record separator after each row:
                # two different lists can't hash the same.
                digest.update(b"\x1f".join(v.encode() for v in row) + b"\x1e")
                pulled += 1
                yield row

        try:
            stored = self.store.write_chunks(campaign_id, chunk_rows(), progress=progress)
            self._finish_plan(plan, resolved)
            if plan.refusals:
                raise CampaignRefused(plan)
            created = self._commit(campaign_id, resolved, plan, digest.hexdigest(), key)
        except BaseException:
            # Also after an error while streaming (a file not UTF-8 at line 50,000):
            # write_chunks had stored chunks but returned no count.
            self.store.discard_chunks(campaign_id, _chunks(max(stored, pulled)))
            raise
        if not created.created:
            self.store.discard_chunks(campaign_id, _chunks(stored))
        return Accepted(created.campaign_id, created.created, plan)

    def get(self, campaign_id: str) -> Campaign | None:
        return self.store.get(campaign_id)

    # -- internals ------------------------------------------------------------

    def _plan(self, resolved: Resolved, source: Source) -> tuple[CampaignPlan, Iterator[list[str]]]:
        options = resolved.options
        checker = RowChecker(
            options.kind,
            resolved.template,
            default_region=self.settings.default_region,
            src_email=resolved.src if options.kind is Kind.EMAIL else None,
        )
        plan = CampaignPlan(
            name=options.name.strip(),
            kind=options.kind,
            transport=resolved.transport,
            report=checker.report,
            deliver_at=resolved.deliver_at,
            timezone=resolved.timezone,
            window=resolved.window,
            max_lateness_s=resolved.max_lateness_s,
        )
        by_country = plan.segments_by_country
        sms = options.kind.value == "sms"
        v1 = resolved.transport is Transport.V1_BULK
        report = checker.report

        # No opt-out at all (the common case): no per-chunk look-up. A STOP that
        # arrives during the accept is still honoured when the chunk is released.
        phones = options.kind is not Kind.EMAIL and bool(self.redis.exists(self.store.keys.opt_out))
        countries: dict[str, int | None] = {}  # first 3 digits -> country (codes are 1-3 digits)

        def kept(batch: list[Recipient]) -> Iterator[list[str]]:
            # Marketing to a number that answered STOP is refused (docs/service.md);
            # checked per 1,000 rows, in one round trip.
            flags = self._opted_out([r.dst for r in batch]) if phones else [False] * len(batch)
            for recipient, opted_out in zip(batch, flags, strict=True):
                if opted_out:
                    report.valid -= 1
                    report.segments -= recipient.segments
                    plan.opted_out += 1
                    continue
                if sms:
                    head = recipient.dst[:3]
                    if head in countries:
                        country = countries[head]
                    else:
                        country = countries[head] = country_of(recipient.dst)
                    by_country[country] = by_country.get(country, 0) + recipient.segments
                yield [recipient.dst, *recipient.values]

        def rows() -> Iterator[list[str]]:
            batch: list[Recipient] = []
            for recipient in checker.check(_rows(source)):
                if v1 and not (len(recipient.dst) == 11 and recipient.dst.startswith("569")):
                    # The v1 document: dst_number is 11 digits, 569... (a Chilean mobile).
                    report.valid -= 1
                    report.segments -= recipient.segments
                    reason = "v1 send_sms_bulk takes Chilean mobiles (569...) only; use v3"
                    field = checker.recipient_field
                    report.invalid.append(InvalidRow(recipient.line, field, reason))
                    continue
                batch.append(recipient)
                if len(batch) == CHUNK_SIZE:
                    yield from kept(batch)
                    batch = []
            yield from kept(batch)

        return plan, rows()

    def _opted_out(self, numbers: list[str]) -> list[bool]:
        if not numbers:
            return []
        answer = self.redis.smismember(self.store.keys.opt_out, numbers)
        return [bool(flag) for flag in answer]

    def _finish_plan(self, plan: CampaignPlan, resolved: Resolved) -> None:
        report = plan.report
        if report.invalid and not resolved.options.skip_invalid:
            plan.refusals.append(
                f"{len(report.invalid)} invalid rows (first: line {report.invalid[0].line}, "
                f"{report.invalid[0].field}: {report.invalid[0].reason}); "
                "fix them or use --skip-invalid"
            )
        if report.valid == 0:
            plan.refusals.append("no valid recipients")
        plan.check_balance(self.balance, resolved.options.id_client)
        if resolved.options.force:
            plan.refusals = [r for r in plan.refusals if not r.startswith("cost ")]

    def _commit(
        self, campaign_id: str, resolved: Resolved, plan: CampaignPlan, fingerprint: str,
        key: str | None,
    ) -> Created:  # fmt: skip
        options = resolved.options
        total = plan.report.valid
        fields: dict[str, str | int] = {
            "campaign_id": campaign_id,
            "name": plan.name,
            "kind": options.kind.value,
            "transport": resolved.transport.value,
            "state": CampaignState.SCHEDULED.value,
            "text": resolved.template.text,
            "subject": resolved.template.subject or "",
            "fields": json.dumps(list(resolved.template.fields)),
            "src": resolved.src or "",
            "id_client": options.id_client or "",
            "timezone": resolved.timezone,
            "deliver_at": int(resolved.deliver_at.timestamp() * 1000),
            "window": str(resolved.window) if resolved.window else "",
            "max_lateness_s": resolved.max_lateness_s,
            "total": total,
            "chunks": _chunks(total),
            "chunk_size": CHUNK_SIZE,
            "cursor": 0,
            "segments": plan.report.segments,
            "invalid": len(plan.report.invalid),
            "duplicates": plan.report.duplicates,
            "created_at": self.store.clock(),
            "idempotency_key": key or "",
        }
        return self.store.commit(campaign_id, fields, fingerprint=fingerprint, idempotency_key=key)


def _rows(source: Source) -> Iterator[Row]:
    if isinstance(source, Path | str):
        return read_rows(Path(source))
    return rows_from_iterable(source)


def _chunks(rows: int) -> int:
    return -(-rows // CHUNK_SIZE)


def _definition(resolved: Resolved) -> str:
    """Everything but the rows that makes two submissions the same campaign."""
    o = resolved.options
    return json.dumps(
        [o.name.strip(), o.kind.value, resolved.template.text, resolved.template.subject,
         resolved.src, o.id_client, resolved.transport.value,
         str(o.deliver_at), str(resolved.window), resolved.max_lateness_s],
        sort_keys=True,
    )  # fmt: skip
