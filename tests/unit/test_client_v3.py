"""client.v3: each call's method, path, query, JSON body, auth, and parsed result."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from connectus_worker.worker.connectus import errors
from connectus_worker.worker.connectus.answers import Ack, SendResult, SmsRecord
from connectus_worker.worker.connectus.answers_account import Subclient
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.enums import Country, DeliveryProduct, SubclientProduct
from tests.support.connectus import TEST_KEY, TEST_USER, make_client

OK_ID = "6bfb1d9d4c6640bab93f23cfdbd5750f"


@dataclass
class Case:
    call: Callable[[ConnectusClient], Any]
    answer: Any
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: no body expected
    check: Callable[[Any], bool] = lambda result: True


CASES: dict[str, Case] = {
    "send_sms": Case(
        lambda c: c.v3.send_sms(dst_number="56987688060", sms_content="hola", id_client="a1"),
        {"status": "ESME_ROK", "id": OK_ID, "segments": "2", "id_delivery": "d1", "new": 1},
        "POST", "/api_v3/sms/send_individual",
        body={"dst_number": "56987688060", "sms_content": "hola", "id_client": "a1", "id_country": 1},
        check=lambda r: r == SendResult(OK_ID, "ESME_ROK", 2, "d1"),
    ),
    "send_otp hashes by default": Case(
        lambda c: c.v3.send_otp(dst_number="56987688060", sms_content="1234", src_number="4374"),
        {"status": "ESME_ROK", "id": OK_ID},
        "POST", "/api_v3/sms/send_otp",
        body={"dst_number": "56987688060", "sms_content": "1234", "src_number": "4374",
              "save_content": "hash"},
        check=lambda r: r.provider_id == OK_ID and r.segments is None,
    ),
    "send_otp without hash": Case(
        lambda c: c.v3.send_otp(dst_number="1", sms_content="2", save_content=None),
        {"status": "ESME_ROK", "id": OK_ID},
        "POST", "/api_v3/sms/send_otp", body={"dst_number": "1", "sms_content": "2"},
    ),
    "get_sms": Case(
        lambda c: c.v3.get_sms(id_sms=OK_ID),
        {"id": OK_ID, "status": "DELIVRD", "platform_status": "ENTREGADO", "segments": 1},
        "GET", f"/api_v3/sms/{OK_ID}",
        check=lambda r: (r.status, r.platform_status) == ("DELIVRD", "ENTREGADO"),
    ),
    "get_sms quotes the id": Case(
        lambda c: c.v3.get_sms(id_sms="../account?x=1"),
        {"status": "ESME_ROK"},
        "GET", "/api_v3/sms/..%2Faccount%3Fx%3D1",
        check=lambda r: (r.id, r.status) == ("../account?x=1", "ESME_ROK"),
    ),
    "sms_delivery_info": Case(
        lambda c: c.v3.sms_delivery_info(id_delivery="d1"),
        {"id_delivery": "d1", "messages": [{"id": "a", "status": "ESME_ROK"}, "junk"]},
        "GET", "/api_v3/sms/delivery_info", query={"delivery_id": "d1"},
        check=lambda r: r.id_delivery == "d1" and [m.id for m in r.messages] == ["a"],
    ),
    "sms_date_report": Case(
        lambda c: c.v3.sms_date_report(begin_date=date(2026, 1, 1), end_date="2026-01-31"),
        {"messages": [{"id_sms": "a", "status": "UNDELIV", "platform_status": "NO_ENTREGABLE"}]},
        "GET", "/api_v3/sms/date_report",
        query={"begin_date": "2026-01-01", "end_date": "2026-01-31"},
        check=lambda r: (r[0].id, r[0].platform_status) == ("a", "NO_ENTREGABLE"),
    ),
    "create_delivery": Case(
        lambda c: c.v3.create_delivery(
            name="n", deliver_at=datetime(2024, 7, 20, 12), id_product=DeliveryProduct.EMAIL
        ),
        {"id": "d9", "name": "n", "deliver_at": "2024-07-20 12:00:00", "id_product": 3,
         "status": "PROGRAMADO"},
        "POST", "/api_v3/deliveries",
        body={"delivery": {"name": "n", "deliver_at": "2024-07-20 12:00:00", "id_product": 3}},
        check=lambda r: (r.id, r.id_product, r.status) == ("d9", 3, "PROGRAMADO"),
    ),
    "get_delivery": Case(
        lambda c: c.v3.get_delivery(id_delivery="d9"),
        {"id": "d9", "status": "EJECUTADO"},
        "GET", "/api_v3/deliveries/d9", check=lambda r: r.status == "EJECUTADO",
    ),
    "update_delivery": Case(
        lambda c: c.v3.update_delivery(id_delivery="d9", deliver_at="2024-06-20 14:00:00"),
        {"id": "d9"},
        "PATCH", "/api_v3/deliveries/d9",
        body={"delivery": {"deliver_at": "2024-06-20 14:00:00"}},
    ),
    "send_email": Case(
        lambda c: c.v3.send_email(dst_email="a@b.cl", src_email="s@b.cl", subject="S",
                                  email_content="<h1>x</h1>", id_delivery="d2"),
        {"id": "e1"},
        "POST", "/api_v3/email/send_single",
        body={"dst_email": "a@b.cl", "src_email": "s@b.cl", "subject": "S",
              "email_content": "<h1>x</h1>", "id_delivery": "d2"},
        check=lambda r: (r.provider_id, r.status) == ("e1", None),
    ),
    "send_otp_email": Case(
        lambda c: c.v3.send_otp_email(dst_email="a@b.cl", src_email="s@b.cl", subject="S",
                                      email_content="1234"),
        {"id": "e2"},
        "POST", "/api_v3/email/send_otp_email",
        body={"dst_email": "a@b.cl", "src_email": "s@b.cl", "subject": "S",
              "email_content": "1234"},
        check=lambda r: r.provider_id == "e2",
    ),
    "get_email": Case(
        lambda c: c.v3.get_email(id_email="e1"),
        {"id": "e1", "status": "ENTREGADO",
         "events": [{"event": "ABIERTO", "timestamp": "t1"}, {"event": "CLICKEADO"}, {}]},
        "GET", "/api_v3/email/e1",
        check=lambda r: [e.event for e in r.events] == ["ABIERTO", "CLICKEADO"]
        and r.status == "ENTREGADO",
    ),
    "email_balance": Case(
        lambda c: c.v3.email_balance(), {"balance": 2312}, "GET", "/api_v3/email/balance",
        check=lambda r: r == 2312,
    ),
    "send_whatsapp": Case(
        lambda c: c.v3.send_whatsapp(src_number="56999944837", dst_number="56987688060",
                                     whatsapp_content="Test"),
        {"message_id": "w1", "status": "EN_COLA"},
        "POST", "/api_v3/whatsapp/send_message",
        body={"src_number": "56999944837", "dst_number": "56987688060",
              "whatsapp_content": "Test"},
        check=lambda r: (r.provider_id, r.status) == ("w1", "EN_COLA"),
    ),
    "whatsapp_status": Case(
        lambda c: c.v3.whatsapp_status(message_id="w1"),
        {"message_id": "w1", "status": "ENTREGADO"},
        "GET", "/api_v3/whatsapp/status", query={"message_id": "w1"},
        check=lambda r: (r.provider_id, r.status) == ("w1", "ENTREGADO"),
    ),
    "whatsapp_messages": Case(
        lambda c: c.v3.whatsapp_messages(src_number="1", dst_number="2"),
        {"messages": [{"message_id": "w1", "whatsapp_content": "hi", "status": "EN_COLA"}]},
        "GET", "/api_v3/whatsapp/messages", query={"src_number": "1", "dst_number": "2"},
        check=lambda r: r[0].whatsapp_content == "hi",
    ),
    "list_clients": Case(
        lambda c: c.v3.list_clients(),
        {"data": {"free_sms_balance_by_country": [
            {"id_country": 1, "country_name": "Chile", "balance": 178808}],
            "clients": [{"id": 11, "id_unique": "lpa22mae", "name": "c", "balance": "12"}]}},
        "GET", "/api_v3/clients",
        check=lambda r: r.free_sms_balance_by_country[0].balance == 178808
        and r.clients[0] == Subclient(11, "lpa22mae", "c", 12),
    ),
    "create_client": Case(
        lambda c: c.v3.create_client(name="test 100"),
        {"id": 11, "id_unique": "9sd0lmn2", "name": "test 100", "avatar": None},
        "POST", "/api_v3/clients", body={"name": "test 100"},
        check=lambda r: r.id_unique == "9sd0lmn2",
    ),
    "get_client": Case(
        lambda c: c.v3.get_client(id_client="lpa22mae"),
        {"id": 11, "id_unique": "lpa22mae"}, "GET", "/api_v3/clients/lpa22mae",
    ),
    "update_client": Case(
        lambda c: c.v3.update_client(id_client="lpa22mae", name="x"),
        {"id": 11, "name": "x"}, "PATCH", "/api_v3/clients/lpa22mae", body={"name": "x"},
        check=lambda r: r.name == "x",
    ),
    "add_balance": Case(
        lambda c: c.v3.add_balance(id_client="lpa22mae", amount=28,
                                   product=SubclientProduct.SMS, id_country=Country.CHILE),
        {"message": "Balance added successfully"},
        "POST", "/api_v3/clients/lpa22mae/add_balance",
        body={"amount": 28, "product": 1, "id_country": 1},
        check=lambda r: r == Ack(True, "Balance added successfully"),
    ),
    "remove_balance of e-mail": Case(
        lambda c: c.v3.remove_balance(id_client="lpa22mae", amount=5,
                                      product=SubclientProduct.EMAIL),
        {"message": "Balance removed successfully"},
        "POST", "/api_v3/clients/lpa22mae/remove_balance", body={"amount": 5, "product": 2},
    ),
    "create_short_link": Case(
        lambda c: c.v3.create_short_link(link="https://www.connectus.cl"),
        {"short_link": "cnct.us/13neyY", "id": 312321},
        "POST", "/api_v3/short_link", body={"link": "https://www.connectus.cl"},
        check=lambda r: (r.short_link, r.id) == ("cnct.us/13neyY", "312321"),
    ),
    "get_short_link": Case(
        lambda c: c.v3.get_short_link(id_short_link="312321"),
        {"link": "https://www.connectus.cl", "clicks": 3258},
        "GET", "/api_v3/short_link/312321", check=lambda r: r.clicks == 3258,
    ),
    "account": Case(
        lambda c: c.v3.account(),
        {"id_account": "84f7", "name": "empresa SpA", "phone": 56990324203,
         "sms_status_hook_url": "https://e.cl/s", "sms_incoming_hook_url": "https://e.cl/i",
         "purchases": [{}]},
        "GET", "/api_v3/account",
        check=lambda r: (r.id_account, r.sms_incoming_hook_url) == ("84f7", "https://e.cl/i"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_v3_call(case: Case) -> None:
    client, recorder = make_client(httpx.Response(200, json=case.answer))
    result = case.call(client)
    request = recorder.last
    assert request.method == case.method
    assert request.url.scheme == "https"
    assert request.url.host == "plataforma.test"
    assert request.url.raw_path.decode().split("?")[0] == case.path
    assert dict(request.url.params) == case.query
    if case.body is None:
        assert request.content == b""
    else:
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == case.body
    assert case.check(result), result


def test_every_call_sends_basic_auth_and_asks_for_json() -> None:
    client, recorder = make_client(httpx.Response(200, json={"balance": 1}))
    client.v3.email_balance()
    expected = base64.b64encode(f"{TEST_USER}:{TEST_KEY}".encode()).decode()
    assert recorder.last.headers["authorization"] == f"Basic {expected}"
    assert recorder.last.headers["accept"] == "application/json"
    assert recorder.last.headers["user-agent"].startswith("connectus-worker/")


def test_records_keep_raw_out_of_repr_and_ignore_unknown_fields() -> None:
    record = SmsRecord.from_body({"status": "ESME_ROK", "sms_content": "secret", "zzz": [1]})
    assert record.raw["zzz"] == [1]
    assert "zzz" not in repr(record)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.v3.create_delivery(name="n", deliver_at="2024-07-20 12:00:00",
                                        id_product=SubclientProduct.EMAIL), TypeError),
        (lambda c: c.v3.add_balance(id_client="x", amount=1, product=DeliveryProduct.SMS),
         TypeError),
        (lambda c: c.v3.add_balance(id_client="x", amount=1, product=SubclientProduct.SMS),
         errors.InvalidRequest),
        (lambda c: c.v3.add_balance(id_client="x", amount=0, product=SubclientProduct.EMAIL),
         errors.InvalidRequest),
        (lambda c: c.v3.update_delivery(id_delivery="d"), ValueError),
        (lambda c: c.v3.get_sms(id_sms=""), ValueError),
        (lambda c: c.v3.create_delivery(name="n", deliver_at="20/07/2024",
                                        id_product=DeliveryProduct.SMS), ValueError),
        (lambda c: c.v3.sms_date_report(begin_date=datetime(2026, 1, 1), end_date="2026-01-02"),
         ValueError),
    ],
    ids=["delivery-wrong-enum", "balance-wrong-enum", "sms-balance-needs-country",
         "amount-positive", "update-needs-a-field", "empty-id", "bad-deliver-at", "datetime"],
)  # fmt: skip
def test_bad_arguments_are_refused_before_sending(
    call: Callable[[ConnectusClient], Any], error: type[Exception]
) -> None:
    client, recorder = make_client(httpx.Response(200, json={}))
    with pytest.raises(error):
        call(client)
    assert recorder.requests == []


def test_aware_deliver_at_is_refused() -> None:
    client, recorder = make_client(httpx.Response(200, json={}))
    with pytest.raises(ValueError, match="naive"):
        client.v3.create_delivery(
            name="n", deliver_at=datetime(2024, 1, 1, tzinfo=UTC), id_product=DeliveryProduct.SMS
        )
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": "ESME_RTHROTTLED"}, errors.Throttled),
        ({"status": "ESME_RINVDSTADR"}, errors.InvalidNumber),
        ({"status": "ESME_RX_P_APPN"}, errors.Rejected),
        ({"error": "Saldo insuficiente"}, errors.BalanceExhausted),
        # Names no message and says something went wrong: not an acceptance.
        ({"error": "algo salió mal"}, errors.MalformedResponse),
        ({"status": "FALLIDO"}, errors.MalformedResponse),
    ],
)
def test_a_2xx_send_answer_can_still_be_an_error(
    answer: dict[str, Any], expected: type[errors.ConnectusError]
) -> None:
    client, _ = make_client(httpx.Response(200, json=answer))
    with pytest.raises(expected) as raised:
        client.v3.send_sms(dst_number="56987688060", sms_content="hola")
    assert raised.value.status_code == 200


@pytest.mark.parametrize(
    ("send", "answer"),
    [
        # The collection's documented answers of send_individual and send_otp.
        (lambda c: c.v3.send_sms(dst_number="56987688060", sms_content="hola"),
         {"status": "ESME_ROK"}),
        (lambda c: c.v3.send_otp(dst_number="56987688060", sms_content="1234"),
         {"status": "ESME_ROK"}),
        # WhatsApp's answer is not documented: a bare 2xx object is an acceptance.
        (lambda c: c.v3.send_whatsapp(src_number="56999944837", dst_number="56987688060",
                                      whatsapp_content="hola"), {}),
        (lambda c: c.v3.send_whatsapp(src_number="56999944837", dst_number="56987688060",
                                      whatsapp_content="hola"), {"status": "EN_COLA"}),
        (lambda c: c.v3.send_email(dst_email="a@b.cl", src_email="c@d.cl", subject="s",
                                   email_content="x"), {}),
        (lambda c: c.qr.send(number="56987688060", message="hola"), {"success": True}),
    ],
)  # fmt: skip
def test_an_accepted_send_answer_without_an_id_is_an_acceptance(
    send: Callable[[ConnectusClient], SendResult], answer: dict[str, Any]
) -> None:
    client, recorder = make_client(httpx.Response(200, json=answer))
    result = send(client)
    assert result.provider_id is None
    assert result.status == answer.get("status")
    assert len(recorder.requests) == 1


def test_a_lookup_answer_with_an_error_status_is_data_not_an_error() -> None:
    client, _ = make_client(httpx.Response(200, json={"id": "a", "status": "ESME_RTHROTTLED"}))
    assert client.v3.get_sms(id_sms="a").status == "ESME_RTHROTTLED"


@pytest.mark.parametrize(
    ("dst", "country"), [("56987654321", 1), ("5939876543", 4), ("12025550123", 5)]
)
def test_a_subclients_sms_carries_the_destinations_country(dst: str, country: int) -> None:
    import json

    client, recorder = make_client(httpx.Response(200, json={"status": "ESME_ROK"}))
    client.v3.send_sms(dst_number=dst, sms_content="hola", id_client="da82la12")
    body = json.loads(recorder.last.content)
    assert body["id_client"] == "da82la12" and body["id_country"] == country
    client.v3.send_sms(dst_number=dst, sms_content="hola")
    assert "id_country" not in json.loads(recorder.last.content)  # no subclient, no country


def test_a_subclients_sms_to_no_connectus_country_is_refused_before_sending() -> None:
    client, recorder = make_client(httpx.Response(200, json={"status": "ESME_ROK"}))
    with pytest.raises(errors.InvalidRequest) as caught:
        client.v3.send_sms(dst_number="34612345678", sms_content="hola", id_client="da82la12")
    assert caught.value.reason == "id_country_unknown"
    assert recorder.requests == []
