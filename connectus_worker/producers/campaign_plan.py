"""What a campaign will do, before anything is queued: its options and its preflight.

:func:`resolve` checks the options (their shapes in :mod:`campaign.options`, the rest
here, with the settings; every bad one named together); :class:`CampaignPlan` is the
preflight answer: row counts, duplicates, segments and cost, the balances it draws on,
the schedule, and the reasons it would be refused.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from connectus_worker.campaign.checker import CheckReport
from connectus_worker.campaign.links import estimated, links_in
from connectus_worker.campaign.model import Balance, Transport, Window
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.campaign.template import Template
from connectus_worker.config import Settings
from connectus_worker.domain.countries import connectus_country
from connectus_worker.domain.deliver_at import parse_deliver_at
from connectus_worker.domain.models import Kind
from connectus_worker.domain.request_fields import check_account
from connectus_worker.domain.validation import (
    ErrorCollector,
    normalize_email,
    normalize_number,
    validate_idempotency_key,
)

#: How many invalid rows and duplicates a plan lists (all are counted).
EXAMPLES = 1_000

#: A row's country from the first digits of its number (a calling code is 1-3 digits).
_country_of_head = functools.cache(connectus_country)


#: Looks up the balance a campaign draws on: (kind, id_client, country id or None,
#: transport); v1 has its own balance calls (worker.connectus.balances).
BalanceLookup = Callable[[Kind, str | None, int | None, Transport], Balance]


#: Whether a v3 campaign puts each released chunk in a Connectus delivery when its
#: options don't say (docs/campaigns.md, "v3 campaigns in a Connectus delivery").
DEFAULT_CONNECTUS_DELIVERY = False


@dataclass(frozen=True)
class Resolved:
    """Options after validation, with defaults applied."""

    options: CampaignOptions
    template: Template
    transport: Transport
    deliver_at: datetime  # aware, UTC
    window: Window | None
    max_lateness_s: int
    src: str | None
    timezone: str
    connectus_delivery: bool  # v3 chunks in Connectus deliveries of their own
    account: str  # the Connectus account that sends it


def resolve(
    options: CampaignOptions, settings: Settings, *, now: datetime | None = None,
    tenant: str = "default",
) -> Resolved:  # fmt: skip
    """Validate the options (``tenant``: who sends it); raises InvalidInput naming every
    bad one."""
    errors = ErrorCollector()
    errors.errors.extend(options.shape_errors)
    # Each option of the wrong shape is named once: the checks below skip it.
    named = {error.field for error in options.shape_errors}
    if options.account is not None:
        errors.check(check_account, options.account, settings, tenant)
    if options.idempotency_key is not None:
        errors.check(validate_idempotency_key, options.idempotency_key)
    # {link:URL} tokens: checked here, counted at the documented short-link length
    # (campaign.links), shortened once per campaign by the worker.
    links = errors.check(links_in, options.text) if "text" not in named else None
    text = estimated(options.text) if links else options.text
    template = None if "text" in named else errors.check(Template.parse, text, options.subject)
    if options.kind.spec.email and not options.subject:
        errors.add("subject", "is required for an e-mail campaign")
    elif options.subject is not None and not options.kind.spec.email:
        errors.add("subject", f"is for e-mail campaigns only, not {options.kind.value}")
    elif options.subject and ("\n" in options.subject or "\r" in options.subject):
        errors.add("subject", "has a line break: a subject is one line")
    transport = options.transport or (
        Transport.V1_BULK if options.kind is Kind.SMS else Transport.V3
    )
    if transport is Transport.V1_BULK and options.kind is not Kind.SMS:
        errors.add("transport", "v1_bulk (send_sms_bulk) carries SMS only")
    if transport is Transport.V1_BULK and options.connectus_delivery is False:
        errors.add(
            "connectus_delivery",
            "v1_bulk always makes one delivery per chunk; turning it off needs transport v3",
        )
    wanted_delivery = options.connectus_delivery
    wanted_delivery = DEFAULT_CONNECTUS_DELIVERY if wanted_delivery is None else wanted_delivery
    if transport is Transport.V1_BULK and options.id_client:
        errors.add("id_client", "v1 send_sms_bulk can't charge a subclient; use transport v3")
    src = None if options.src is None else str(options.src)  # HTTP: a number may be an int
    if options.kind is Kind.EMAIL:
        src = src or settings.connectus_default_src_email
        if not src:
            errors.add("src", "an e-mail campaign needs src_email (or CONNECTUS_DEFAULT_SRC_EMAIL)")
        else:
            src = errors.check(normalize_email, src, field="src")
    elif options.kind is Kind.WHATSAPP:
        src = src or settings.connectus_whatsapp_src_number
        if not src:
            errors.add("src", "a WhatsApp campaign needs src_number, the account's origin number "
                              "(or CONNECTUS_WHATSAPP_SRC_NUMBER)")  # fmt: skip
        else:
            src = errors.check(
                normalize_number, src, field="src", default_region=settings.default_region
            )
    when = errors.check(parse_deliver_at, options.deliver_at, tz=settings.default_timezone, now=now)
    window = errors.check(Window.parse, options.window) if options.window else None
    lateness = options.max_lateness_s
    if lateness is None:
        lateness = settings.campaign_max_lateness_s
    errors.raise_if_any()
    assert template is not None
    return Resolved(
        options=options,
        template=template,
        transport=transport,
        deliver_at=when or (now or datetime.now(UTC)),
        window=window,
        max_lateness_s=lateness,
        src=src,
        timezone=settings.default_timezone,
        connectus_delivery=transport is Transport.V3 and wanted_delivery,
        account=settings.account_for(tenant, options.account),
    )


@dataclass
class CampaignPlan:
    """The preflight answer (also what ``campaign send`` accepted)."""

    resolved: Resolved
    report: CheckReport
    segments_by_country: dict[int | None, int] = field(default_factory=dict)
    balances: list[Balance] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def add_segments(self, rows: list[list[str]], segments: list[int]) -> None:
        """Add SMS ``segments[i]`` to the country of ``rows[i][0]`` (E.164 digits)."""
        heads = Counter(zip([row[0][:3] for row in rows], segments, strict=True))
        by_country = self.segments_by_country
        for (head, units), count in heads.items():
            country = _country_of_head(head)  # codes are 1-3 digits
            by_country[country] = by_country.get(country, 0) + units * count

    @property
    def transport(self) -> Transport:
        return self.resolved.transport

    @property
    def cost(self) -> int:
        """Units charged: SMS segments, or one per e-mail or WhatsApp message."""
        return self.report.segments

    def finish(self, lookup: BalanceLookup | None) -> None:
        """Once every row is checked: record why the campaign would be refused, and
        the balances it draws on (``lookup`` None: not asked)."""
        options, report = self.resolved.options, self.report
        if report.invalid and not options.skip_invalid:
            first = report.invalid[0]
            self.refusals.append(
                f"{len(report.invalid)} invalid rows (first: line {first.line}, "
                f"{first.field}: {first.reason}); fix them or use --skip-invalid"
            )
        if report.valid == 0:
            self.refusals.append("no valid recipients")
        if lookup is None:
            return
        # Segments are counted per country (campaigns.add_segments), as the SMS balance is kept.
        sms = options.kind.spec.segmented
        for country in list(self.segments_by_country) if sms else [None]:
            balance = lookup(options.kind, options.id_client, country, self.transport)
            self.balances.append(balance)
            need = self.segments_by_country.get(country, 0) if sms else self.cost
            short = balance.available is not None and need > balance.available
            if short and not options.force:
                self.refusals.append(
                    f"cost {need} exceeds {balance.source} ({balance.available}); "
                    "use --force to send anyway"
                )

    def to_json(self) -> dict[str, Any]:
        """The plan as :class:`CampaignPlanOut` gives it (CLI, HTTP)."""
        r, resolved = self.report, self.resolved
        return CampaignPlanOut(
            name=resolved.options.name,
            kind=resolved.options.kind.value,
            transport=resolved.transport.value,
            rows=r.rows,
            valid=r.valid,
            invalid=len(r.invalid),
            duplicates=r.duplicates,
            opted_out=r.opted_out,
            segments=r.segments,
            max_segments=r.max_segments,
            cost=self.cost,
            segments_by_country={str(k): v for k, v in self.segments_by_country.items()},
            balances=[BalanceOut(source=b.source, available=b.available) for b in self.balances],
            deliver_at=resolved.deliver_at.astimezone(ZoneInfo(resolved.timezone)).isoformat(),
            timezone=resolved.timezone,
            window=str(resolved.window) if resolved.window else None,
            max_lateness_s=resolved.max_lateness_s,
            invalid_rows=[
                InvalidRowOut(line=i.line, field=i.field, reason=i.reason)
                for i in r.invalid[:EXAMPLES]
            ],
            duplicate_rows=[
                DuplicateRowOut(line=line, first_line=first)
                for line, first in r.duplicate_lines[:EXAMPLES]
            ],
            refusals=list(self.refusals),
        ).model_dump(mode="json")


# -- the plan's shape (the CLI's --json, the HTTP answers and their OpenAPI document) --


class InvalidRowOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int = Field(description="Position in recipients, from 1")
    field: str
    reason: str


class DuplicateRowOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int
    first_line: int = Field(description="The earlier row kept for the same recipient")


class BalanceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    available: int | None


class _PlanFigures(BaseModel):
    """What the plan and its summary share: counts, cost and schedule."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["sms", "email", "whatsapp"]
    transport: Literal["v3", "v1_bulk"]
    rows: int
    valid: int
    invalid: int
    duplicates: int
    opted_out: int = Field(description="valid rows dropped: the number opted out (STOP)")
    segments: int
    max_segments: int
    cost: int
    segments_by_country: dict[str, int]
    balances: list[BalanceOut]
    deliver_at: str
    timezone: str
    window: str | None
    max_lateness_s: int


class CampaignPlanSummary(_PlanFigures):
    """A campaign's preflight without its invalid rows and refusals (a refusal's ``plan``)."""

    duplicate_rows: list[DuplicateRowOut]


class CampaignPlanOut(_PlanFigures):
    """The whole preflight (:meth:`CampaignPlan.to_json`), with the invalid rows and the
    reasons it would be refused."""

    invalid_rows: list[InvalidRowOut]
    duplicate_rows: list[DuplicateRowOut]
    refusals: list[str]
