"""A v3 campaign's Connectus deliveries: one per released chunk (``POST /api_v3/deliveries``).

With ``connectus_delivery`` on, the pump creates a delivery named
``<campaign> #<chunk>`` when it releases a chunk, and each of the chunk's jobs
is sent with its ``id_delivery``. Connectus's own reports then group the
campaign, and reconciliation and provider-id lookups read the chunk's
``delivery_info`` rather than a day's ``date_report``.

The documents fix the shape: a delivery executes at its ``deliver_at`` (its
messages wait, ``PROGRAMADO``, until then) and an executed delivery takes no
more messages. So ``deliver_at`` is the release time plus a short lead
(``CAMPAIGN_DELIVERY_LEAD_S``): the chunk's first messages wait at most that
long, and a message sent after it (rate limits, retries, a pause) is refused
with a 400 "Delivery already executed", which is never charged, and is sent
again at once without ``id_delivery`` (:func:`without_executed_delivery`).
Scheduling stays with the workers.
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

#: ``POST /deliveries`` numbers products by its own description (1 SMS, 2 WhatsApp, 3 Email).
PRODUCTS = {Kind.SMS: DeliveryProduct.SMS, Kind.WHATSAPP: DeliveryProduct.WHATSAPP,
            Kind.EMAIL: DeliveryProduct.EMAIL}  # fmt: skip

#: Kinds whose send takes ``id_delivery`` (v3 send_individual, send_single, send_message).
WITH_DELIVERY = frozenset(PRODUCTS)


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
            id_product=PRODUCTS[campaign.kind],
        )
        return delivery.id

    return open_delivery


def executed_delivery(exc: InvalidRequest) -> bool:
    """Whether Connectus definitely refused the send because its delivery was executed.

    Only an HTTP 400 naming the delivery as executed counts: an answer that
    says anything else (or nothing) is not proof that nothing was charged.
    """
    if exc.status_code != 400:
        return False
    return "already executed" in exc.message.lower()


def without_executed_delivery(
    call: Callable[[Mapping[str, Any]], str | None],
) -> Callable[[Mapping[str, Any]], str | None]:
    """``call``, sent again without ``id_delivery`` when its delivery was executed."""

    def send(payload: Mapping[str, Any]) -> str | None:
        try:
            return call(payload)
        except InvalidRequest as exc:
            if not payload.get("id_delivery") or not executed_delivery(exc):
                raise
            log.info("send.delivery_executed", id_delivery=payload["id_delivery"])
            return call({k: v for k, v in payload.items() if k != "id_delivery"})

    return send
