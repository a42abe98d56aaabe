"""A v3 campaign's Connectus deliveries: one per released chunk (``POST /api_v3/deliveries``).

With ``connectus_delivery`` on, each released chunk gets a delivery named
``<campaign> #<chunk>`` and its jobs are sent with its ``id_delivery``, so Connectus's
reports group the campaign and lookups read the chunk's ``delivery_info``. A delivery
executes at its ``deliver_at`` and then takes no more messages, so ``deliver_at`` is the
release time plus ``CAMPAIGN_DELIVERY_LEAD_S``, and a later send refused with a 400
"Delivery already executed" (never charged) is sent again at once without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectus_worker.campaign.model import Campaign
from connectus_worker.domain.models import Kind
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.enums import DeliveryProduct
from connectus_worker.worker.connectus.errors import InvalidRequest

log = structlog.get_logger("connectus_worker.worker.campaign_deliveries")

#: Kinds whose send takes ``id_delivery``: the v3 sends but OTPs'.
WITH_DELIVERY = frozenset(kind for kind in Kind if kind.spec.host == "v3" and not kind.spec.otp)


def delivery_opener(
    client: ConnectusClient | Mapping[str, ConnectusClient], lead_s: int, *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[Campaign, int], str]:  # fmt: skip
    """``open(campaign, chunk) -> id_delivery``: create the chunk's delivery at the
    campaign's account, executed ``lead_s`` seconds from now (account-local time,
    the campaign's zone)."""
    clients = ByAccount.of_one(client)

    def open_delivery(campaign: Campaign, chunk: int) -> str:
        when = (now() + timedelta(seconds=lead_s)).astimezone(campaign.zone)
        # deliver_at has whole seconds: round up, so the lead is never shortened.
        if when.microsecond:
            when += timedelta(microseconds=1_000_000 - when.microsecond)
        delivery = clients.of(campaign.account).v3.create_delivery(
            name=f"{campaign.name} #{chunk}"[:100],
            deliver_at=when.strftime("%Y-%m-%d %H:%M:%S"),
            id_product=DeliveryProduct[campaign.kind.spec.product.upper()],
        )
        return delivery.id

    return open_delivery


def without_executed_delivery(
    call: Callable[[Mapping[str, Any]], str | None],
) -> Callable[[Mapping[str, Any]], str | None]:
    """``call``, sent again without ``id_delivery`` when its delivery was executed."""

    def send(payload: Mapping[str, Any]) -> str | None:
        try:
            return call(payload)
        except InvalidRequest as exc:
            # Only a 400 naming the delivery as executed proves that nothing was charged.
            executed = exc.status_code == 400 and "already executed" in exc.message.lower()
            if not payload.get("id_delivery") or not executed:
                raise
            log.info("send.delivery_executed", id_delivery=payload["id_delivery"])
            return call({k: v for k, v in payload.items() if k != "id_delivery"})

    return send
