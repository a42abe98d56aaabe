"""worker.connectus.balances.BalanceLookup: which balance a campaign draws on.

Answers are the documented shapes (the collection's ``GET /clients`` example,
whose subclient entries carry a balance object with SMS per country, and the
one figure of ``GET /clients/:id``), served by an ``httpx.MockTransport``.
"""

from __future__ import annotations

import httpx

from connectus_worker.campaign.model import Transport
from connectus_worker.domain.models import Kind
from connectus_worker.worker.connectus.balances import BalanceLookup
from tests.support.connectus import make_client

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


def test_whatsapp_reads_the_unassigned_and_the_subclient_whatsapp_balance() -> None:
    sub = {**SUB, "balance": {**SUB["balance"], "whatsapp_balance": 4}}  # type: ignore[dict-item]
    api, recorder = make_client(_listing([sub]))
    lookup = BalanceLookup(api)
    free = lookup(Kind.WHATSAPP, None, None)
    assert (free.source, free.available) == (
        "account's unassigned WhatsApp balance (free_whatsapp_balance)", 0)  # fmt: skip
    mine = lookup(Kind.WHATSAPP, "da82la12", None)
    assert (mine.source, mine.available) == ("subclient da82la12's WhatsApp balance", 4)
    assert [r.url.path for r in recorder.requests] == ["/api_v3/clients"]


def test_email_without_a_subclient_counts_the_smaller_of_email_balance_and_free() -> None:
    api, recorder = make_client(httpx.Response(200, json={"balance": 100_000}), _listing([]))
    smaller = BalanceLookup(api)(Kind.EMAIL, None, None)
    assert (smaller.source, smaller.available) == (
        "account's unassigned e-mail balance (free_email_balance)", 64025)  # fmt: skip
    api, _ = make_client(httpx.Response(200, json={"balance": 7}), _listing([]))
    assert BalanceLookup(api)(Kind.EMAIL, None, None).available == 7
    assert sorted(r.url.path for r in recorder.requests) == [
        "/api_v3/clients",
        "/api_v3/email/balance",
    ]


def test_the_v1_transport_reads_the_v1_balance_calls() -> None:
    api, recorder = make_client(httpx.Response(200, json={"balance": "12"}),
                                httpx.Response(200, json={"balance": "3"}))  # fmt: skip
    lookup = BalanceLookup(api)
    sms = lookup(Kind.SMS, None, CHILE, Transport.V1_BULK)
    assert (sms.source, sms.available) == ("account's v1 SMS balance (check_balance)", 12)
    email = lookup(Kind.EMAIL, None, None, Transport.V1_BULK)
    assert (email.source, email.available) == (
        "account's v1 e-mail balance (check_email_balance)", 3)  # fmt: skip
    assert [r.url.path for r in recorder.requests] == [
        "/api_v1/check_balance", "/api_v1/check_email_balance"]  # fmt: skip
