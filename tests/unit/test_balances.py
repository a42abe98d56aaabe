"""worker.connectus.balances.BalanceLookup: which balance a campaign draws on.

Answers are the documented shapes (the collection's ``GET /clients`` example,
whose subclient entries carry a balance object with SMS per country, and the
one figure of ``GET /clients/:id``), served by an ``httpx.MockTransport``.
"""

from __future__ import annotations

import httpx

from core.models import Kind
from worker.connectus.balances import BalanceLookup
from worker.connectus.testing import make_client

CHILE, PERU = 1, 3


def _listing(clients: list[dict[str, object]]) -> httpx.Response:
    return httpx.Response(200, json={"data": {
        "free_sms_balance_by_country": [
            {"id_country": CHILE, "country_name": "Chile", "balance": 178808},
            {"id_country": PERU, "country_name": "Peru", "balance": 56026}],
        "free_email_balance": 64025, "free_whatsapp_balance": 0, "clients": clients}})  # fmt: skip


SUB = {"name": "Matias 2", "id_unique": "da82la12", "balance": {
    "sms_balance": [{"id_country": CHILE, "country_name": "Chile", "balance": 78},
                    {"id_country": PERU, "country_name": "Peru", "balance": 0}],
    "email_balance": 5, "whatsapp_balance": 0}}  # fmt: skip


def test_a_subclient_sms_balance_is_its_balance_for_the_country() -> None:
    api, recorder = make_client(_listing([SUB]))
    lookup = BalanceLookup(api)
    chile = lookup(Kind.SMS, "da82la12", CHILE)
    assert (chile.source, chile.available) == ("subclient da82la12's SMS balance for Chile", 78)
    assert lookup(Kind.SMS, "da82la12", PERU).available == 0
    assert lookup(Kind.SMS, "da82la12", 99).available == 0  # no balance for that country
    assert lookup(Kind.EMAIL, "da82la12", None).available == 5
    free = lookup(Kind.SMS, None, PERU)
    assert (free.source, free.available) == ("account's unassigned SMS balance for Peru", 56026)
    assert [r.url.path for r in recorder.requests] == ["/api_v3/clients"]  # listed once


def test_a_subclient_not_listed_falls_back_to_its_one_figure() -> None:
    one = httpx.Response(200, json={"id": 11, "id_unique": "lpa22mae", "name": "colegio",
                                    "balance": 12})  # fmt: skip
    api, recorder = make_client(_listing([SUB]), one)
    balance = BalanceLookup(api)(Kind.SMS, "lpa22mae", CHILE)
    assert (balance.source, balance.available) == ("subclient lpa22mae's balance", 12)
    assert [r.url.path for r in recorder.requests] == [
        "/api_v3/clients",
        "/api_v3/clients/lpa22mae",
    ]
