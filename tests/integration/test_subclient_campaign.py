"""A v3 SMS campaign charged to a subclient: every SMS carries id_country, the subclient pays."""

from __future__ import annotations

from collections.abc import Callable

from connectus_worker.campaign.model import CampaignState, Transport
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.campaign_control import CampaignControl
from connectus_worker.producers.campaigns import CampaignProducer
from connectus_worker.worker.app import build_client
from connectus_worker.worker.connectus.enums import Country, SubclientProduct
from devtools.stack import LocalStack
from tests.support.stack_checks import ledger
from tests.support.waiting import wait_for


def test_a_v3_sms_campaign_to_two_countries_is_charged_to_the_subclient(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(env={"RATE_SMS_PER_S": "500", "RATE_SMS_BURST": "100"})
    settings = stack.settings
    with build_client(settings) as client:
        sub = client.v3.create_client(name="Campaña subcliente")
        assert sub.id_unique
        for country in (Country.CHILE, Country.PERU):
            client.v3.add_balance(id_client=sub.id_unique, amount=10,
                                  product=SubclientProduct.SMS, id_country=country)  # fmt: skip
        chile = [f"5698700{i:04d}" for i in range(4)]
        peru = [f"51987600{i:03d}" for i in range(3)]
        producer = CampaignProducer(settings, balance=None)
        options = CampaignOptions(name="sub", text="Hola {name}", transport=Transport.V3,
                                  id_client=sub.id_unique)  # fmt: skip
        rows = [{"dst_number": d, "name": "x"} for d in chile + peru]
        accepted = producer.send(rows, options)
        store = CampaignStore(producer.redis, Keys(settings.key_prefix),
                              ttl_s=settings.campaign_ttl_s, job_ttl_s=settings.job_ttl_s)  # fmt: skip
        control = CampaignControl(store)
        wait_for(lambda: control.get(accepted.campaign_id).state is CampaignState.FINISHED,
                 timeout_s=60, what="the campaign finished")  # fmt: skip
        assert control.status(accepted.campaign_id).counts == {"sent": 7}
        charges = [c for c in ledger(stack) if c["product"] == "sms"]
        assert len(charges) == 7 and {c["id_client"] for c in charges} == {sub.id_unique}
        listed = client.v3.list_clients().client(sub.id_unique)
        assert listed is not None
        left = {b.id_country: b.balance for b in listed.sms_balances}
        assert (left[1], left[3]) == (10 - 4, 10 - 3)
