"""The campaign option ``connectus_delivery`` and the resend of a send whose delivery
executed (no network: the calls are plain functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from config import load_settings
from core.campaign.model import Transport
from core.models import Kind
from core.validation import InvalidInput
from producers.campaign_plan import DEFAULT_CONNECTUS_DELIVERY, CampaignOptions, resolve
from worker.campaign_deliveries import without_executed_delivery
from worker.connectus.errors import AmbiguousError, InvalidRequest

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
