"""Campaigns from producers: preflight a recipient list, then accept it.

Accepting streams the rows once: check and deduplicate them a batch at a time
(:meth:`campaign.checker.RowChecker.check_batch`), store them as chunks
(:meth:`campaign.store.CampaignStore.write_batches`), and commit the campaign record
in one script at the end. A refused list (bad rows without ``skip_invalid``, a cost
over the balance without ``force``) has its chunks deleted; a crash leaves only orphan
chunks with a TTL. No job record or Dramatiq message exists until the workers release
a chunk, shortly before sending it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import redis

from connectus_worker.campaign.checker import InvalidRow, RowChecker
from connectus_worker.campaign.model import Campaign, CampaignState, Transport
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.campaign.source import batched, read_batches, rows_from_iterable
from connectus_worker.campaign.store import CHUNK_SIZE, CampaignStore, Created
from connectus_worker.config import Settings
from connectus_worker.config.tenants import DEFAULT_TENANT, tenant_problem
from connectus_worker.domain.countries import NO_SUBCLIENT_COUNTRY, connectus_country
from connectus_worker.domain.hashing import campaign_digest
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.durability import Durability
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.campaign_plan import BalanceLookup, CampaignPlan, Resolved, resolve
from connectus_worker.redis import connect

#: The v1 document: dst_number is 11 digits, 569... (a Chilean mobile).
V1_MOBILES_ONLY = "v1 send_sms_bulk takes Chilean mobiles (569...) only; use v3"


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
    """Preflights and accepts campaigns. Build one per process and reuse it.

    ``tenant`` (:mod:`config.tenants`) owns the campaigns it accepts, and its
    idempotency keys are its own. ``balance`` gives the balance lookup of the
    Connectus account that sends a campaign (each account has its balances);
    None: balances are not asked.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        tenant: str = DEFAULT_TENANT,
        redis_client: redis.Redis | None = None,
        balance: Callable[[str], BalanceLookup] | None = None,
        clock: Callable[[], int] = epoch_ms,
    ) -> None:
        problem = tenant_problem(tenant)
        if problem is not None:
            raise InvalidInput("tenant", problem)
        self.tenant = tenant
        self.settings = settings
        self.redis = redis_client or connect(settings)
        self.store = CampaignStore(
            self.redis,
            Keys(settings.key_prefix),
            ttl_s=settings.campaign_ttl_s,
            job_ttl_s=settings.job_ttl_s,
            clock=clock,
            durability=Durability.from_settings(settings),
        )
        self.balance = balance

    def preflight(self, source: Source, options: CampaignOptions) -> CampaignPlan:
        """What :meth:`send` would do with this list, without storing anything."""
        resolved = resolve(options, self.settings, tenant=self.tenant)
        plan, batches = self._plan(resolved, source)
        for _ in batches:  # the checker fills the plan's report as rows are pulled
            pass
        self._finish_plan(plan)
        return plan

    def send(
        self,
        source: Source,
        options: CampaignOptions,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Accepted:
        """Accept the campaign: store its recipients and schedule it.

        Raises :class:`domain.validation.InvalidInput` for bad options,
        :class:`CampaignRefused` for a list that fails preflight, and
        :class:`campaign.store.CampaignConflict` for an idempotency key
        already used by a different campaign.
        """
        resolved = resolve(options, self.settings, tenant=self.tenant)
        campaign_id = uuid.uuid4().hex[:16]
        plan, batches = self._plan(resolved, source)
        # Keyed (CONTENT_HASH_KEY): the fingerprint is kept in Redis, and a
        # plain hash of a small list and template could be searched for.
        digest = campaign_digest(self.settings.content_key)
        digest.update(_definition(resolved).encode())

        def hashed(batches: Iterator[list[list[str]]]) -> Iterator[list[list[str]]]:
            for batch in batches:
                # Unit separator between values, record separator after each row:
                # two different lists can't hash the same.
                digest.update(("\x1e".join(map("\x1f".join, batch)) + "\x1e").encode())
                yield batch

        try:
            self.store.write_batches(campaign_id, hashed(batches), progress=progress)
            self._finish_plan(plan)
            if plan.refusals:
                raise CampaignRefused(plan)
            created = self._commit(campaign_id, plan, digest.hexdigest())
        except BaseException:
            # Also after an error while streaming (a file not UTF-8 at line 50,000):
            # the rows found valid so far bound the chunks written.
            self.store.discard_chunks(campaign_id, _chunks(plan.report.valid))
            raise
        if not created.created:
            self.store.discard_chunks(campaign_id, _chunks(plan.report.valid))
        return Accepted(created.campaign_id, created.created, plan)

    def get(self, campaign_id: str) -> Campaign | None:
        """The tenant's campaign (None: unknown, expired or another tenant's)."""
        campaign = self.store.get(campaign_id)
        return campaign if campaign is not None and campaign.tenant == self.tenant else None

    # -- internals ------------------------------------------------------------

    def _plan(
        self, resolved: Resolved, source: Source
    ) -> tuple[CampaignPlan, Iterator[list[list[str]]]]:
        """The plan (its report filled as batches are pulled) and the kept rows,
        ``[dst, value...]``, in lists of at most one batch each."""
        options = resolved.options
        checker = RowChecker(
            options.kind, resolved.template, default_region=self.settings.default_region
        )
        plan = CampaignPlan(resolved, checker.report)
        report = checker.report
        invalid = report.invalid
        # Numbers the campaign can't send to become invalid rows, with the reason.
        refused: list[tuple[Callable[[str], bool], str]] = []
        if resolved.transport is Transport.V1_BULK:
            refused.append((_v1_mobile, V1_MOBILES_ONLY))
        if options.kind is Kind.SMS and options.id_client is not None:
            # A subclient's SMS balance is per country (sent as id_country): a number
            # of no Connectus country can't be charged to it.
            refused.append((_has_country, NO_SUBCLIENT_COUNTRY))
        # No opt-out at all (the common case): no per-batch look-up. A STOP that
        # arrives during the accept is still honoured when the chunk is released.
        phones = options.kind.spec.phone and bool(self.redis.exists(self.store.keys.opt_out))

        def kept() -> Iterator[list[list[str]]]:
            if isinstance(source, Path | str):
                batches = read_batches(Path(source))
            else:
                batches = batched(rows_from_iterable(source))
            for batch in batches:
                first_invalid = len(invalid)
                checked = checker.check_batch(batch)
                for ok, reason in refused:
                    keep = [ok(row[0]) for row in checked.rows]
                    if not all(keep):
                        lines = zip(checked.lines, keep, strict=True)
                        field = checker.recipient_field
                        invalid.extend(InvalidRow(n, field, reason) for n, k in lines if not k)
                        checked.keep_only(keep, report)
                # in line order with the checker's findings, as row by row
                invalid[first_invalid:] = sorted(invalid[first_invalid:], key=attrgetter("line"))
                if phones and checked.rows:
                    # Marketing to a number that answered STOP is refused (docs/service.md);
                    # checked per batch (1,000 rows at most), in one round trip.
                    flags = self.store.opted_out([row[0] for row in checked.rows])
                    if any(flags):
                        report.opted_out += sum(flags)
                        checked.keep_only([not flag for flag in flags], report)
                if checker.kind.spec.segmented:
                    plan.add_segments(checked.rows, checked.segments)
                yield checked.rows

        return plan, kept()

    def _finish_plan(self, plan: CampaignPlan) -> None:
        plan.finish(self.balance(plan.resolved.account) if self.balance else None)

    def _commit(self, campaign_id: str, plan: CampaignPlan, fingerprint: str) -> Created:
        resolved = plan.resolved
        options = resolved.options
        key = options.idempotency_key
        total = plan.report.valid
        fields: dict[str, str | int] = {
            "campaign_id": campaign_id,
            "name": options.name,
            "kind": options.kind.value,
            "transport": resolved.transport.value,
            "state": CampaignState.SCHEDULED.value,
            "text": options.text,
            "subject": resolved.template.subject or "",
            "fields": json.dumps(list(resolved.template.fields)),
            "src": resolved.src or "",
            "id_client": options.id_client or "",
            "connectus_delivery": "1" if resolved.connectus_delivery else "",
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
            "account": resolved.account,
        }
        return self.store.commit(
            campaign_id, fields, fingerprint=fingerprint, idempotency_key=key, tenant=self.tenant
        )


def _v1_mobile(dst: str) -> bool:
    """11 digits, 569...: a Chilean mobile, what v1 send_sms_bulk takes."""
    return len(dst) == 11 and dst.startswith("569")


def _has_country(dst: str) -> bool:
    return connectus_country(dst) is not None


def _chunks(rows: int) -> int:
    return -(-rows // CHUNK_SIZE)


def _definition(resolved: Resolved) -> str:
    """Everything but the rows that makes two submissions the same campaign."""
    o = resolved.options
    return json.dumps(
        [o.name, o.kind.value, o.text, resolved.template.subject,
         resolved.src, o.id_client, resolved.transport.value,
         str(o.deliver_at), str(resolved.window), resolved.max_lateness_s,
         *(["connectus_delivery"] if resolved.connectus_delivery else [])],
        sort_keys=True,
    )  # fmt: skip
