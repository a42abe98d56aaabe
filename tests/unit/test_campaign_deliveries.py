"""The campaign option ``connectus_delivery``, the resend of a send whose delivery
executed, and the lookup of a job with a delivery (no network: fakeredis and plain
functions)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest

from connectus_worker.campaign.model import Transport
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaign_plan import DEFAULT_CONNECTUS_DELIVERY, resolve
from connectus_worker.worker.campaign_deliveries import without_executed_delivery
from connectus_worker.worker.connectus.errors import AmbiguousError, InvalidRequest
from tests.support.clock import Clock
from tests.support.pipeline import Listing, Listings, lookup_of, send_unnamed
from tests.support.service import BEARER, CAMPAIGN, invalid_params, service, store_of

EXECUTED = InvalidRequest("Delivery already executed", reason="http_400", status_code=400)


def _recording(*errors: Exception) -> tuple[list[dict[str, Any]], Any]:
    calls: list[dict[str, Any]] = []
    pending = list(errors)

    def call(payload: Mapping[str, Any]) -> str | None:
        calls.append(dict(payload))
        if pending:
            raise pending.pop(0)
        return "id-1"

    return calls, call


def test_a_send_refused_as_executed_goes_again_without_its_delivery() -> None:
    calls, call = _recording(EXECUTED)
    assert without_executed_delivery(call)({"dst_number": "1", "id_delivery": "d1"}) == "id-1"
    assert calls == [{"dst_number": "1", "id_delivery": "d1"}, {"dst_number": "1"}]


@pytest.mark.parametrize(
    ("error", "payload"),
    [
        # Anything but a definite "executed" refusal is not proof that nothing was charged.
        (InvalidRequest("Unknown delivery", reason="http_400", status_code=400),
         {"id_delivery": "d1"}),
        (InvalidRequest("already executed", reason="ESME_RINVPARAM", status_code=200),
         {"id_delivery": "d1"}),
        (AmbiguousError("already executed", reason="read_timeout"),
         {"id_delivery": "d1"}),
        (EXECUTED, {"dst_number": "1"}),  # no delivery to leave out
    ],
)  # fmt: skip
def test_other_errors_are_not_resent(error: Exception, payload: dict[str, Any]) -> None:
    calls, call = _recording(error)
    with pytest.raises(type(error)):
        without_executed_delivery(call)(payload)
    assert calls == [payload]


def test_the_option_is_for_v3_campaigns() -> None:
    settings = load_settings({})
    v3 = CampaignOptions(name="n", text="Hola", transport=Transport.V3, connectus_delivery=True)
    assert resolve(v3, settings).connectus_delivery is True
    default = CampaignOptions(name="n", text="Hola", kind=Kind.WHATSAPP, src="56999944837")
    assert resolve(default, settings).connectus_delivery is DEFAULT_CONNECTUS_DELIVERY
    bulk = CampaignOptions(name="n", text="Hola", transport=Transport.V1_BULK)
    assert resolve(bulk, settings).connectus_delivery is False  # its chunks make their own
    off = CampaignOptions(name="n", text="Hola", transport=Transport.V1_BULK,
                          connectus_delivery=False)  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        resolve(off, settings)
    assert refused.value.field == "connectus_delivery"


class DeliveryListings(Listings):
    """SMS listings per delivery: ``by_delivery[id]`` for delivery_info, ``None`` for
    the day's date_report."""

    def __init__(self, by_delivery: dict[str | None, Listing]) -> None:
        super().__init__()
        self.by_delivery = by_delivery

    def sms(self, id_delivery: str | None, created_at: datetime) -> Listing:
        self.asked.append(("sms", id_delivery))
        return self.by_delivery.get(id_delivery, [])


@pytest.mark.parametrize(
    ("by_delivery", "asked"),
    [
        # In its delivery: one delivery_info, no date_report.
        ({"d1": [("p1", "56987654321", "hola")]}, [("sms", "d1")]),
        # Sent again without its delivery once that executed: the day's report has it.
        ({"d1": [], None: [("p1", "56987654321", "hola")]}, [("sms", "d1"), ("sms", None)]),
    ],
)  # fmt: skip
def test_a_job_with_a_delivery_is_looked_up_in_it_then_in_the_day(
    producer: Producer, clock: Clock, by_delivery: dict[str | None, Listing],
    asked: list[tuple[str, Any]],
) -> None:  # fmt: skip
    job_id = producer.send_sms("56987654321", "hola", id_delivery="d1")
    send_unnamed(producer, clock, Kind.SMS)
    listings = DeliveryListings(by_delivery)
    clock.now_ms += 30_000
    assert lookup_of(producer).look_up_ids(listings) == {"found": 1}
    assert producer.get_status(job_id).provider_id == "p1"
    assert listings.asked == asked


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_intake_takes_connectus_delivery_and_names_a_bad_one() -> None:

    async def post(body: dict[str, Any]) -> Any:
        return await svc.client.post("/v1/campaigns", json=body, headers=BEARER)

    async with service() as svc:
        on = await post({**CAMPAIGN, "transport": "v3", "connectus_delivery": True})
        assert on.status_code == 202, on.text
        default = await post({**CAMPAIGN, "name": "Otra", "transport": "v3"})
        assert default.status_code == 202, default.text
        off_bulk = await post({**CAMPAIGN, "transport": "v1_bulk", "connectus_delivery": False})
        bad = await post({**CAMPAIGN, "transport": "v3", "connectus_delivery": "maybe"})
        store = store_of(svc)
        stored_on = store.get(on.json()["campaign_id"])
        stored_default = store.get(default.json()["campaign_id"])
    assert stored_on is not None and stored_on.connectus_delivery is True
    assert stored_default is not None
    assert stored_default.connectus_delivery is DEFAULT_CONNECTUS_DELIVERY
    assert "connectus_delivery" in invalid_params(off_bulk)
    assert "connectus_delivery" in invalid_params(bad)
