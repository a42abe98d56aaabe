"""Every answer shape of docs/connectus-api.md, read through the client (worker.connectus.answers).

Documented answers read as shown (numbers as text or as numbers where the
documents show either); unknown fields are ignored; an answer lacking what the
caller needs, or hostile in its types, is ``MalformedResponse`` naming the
field, never another exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectus_worker.worker.connectus import errors
from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.enums import Country, SubclientProduct
from tests.support.connectus import make_client

Call = Callable[[ConnectusClient], Any]

SEND_SMS: Call = lambda c: c.v3.send_sms(dst_number="56987688060", sms_content="hola")  # noqa: E731
V1_SMS: Call = lambda c: c.v1.send_sms(dst_number="56987688060", sms_content="hola")  # noqa: E731


def answer(call: Call, body: Any) -> Any:
    client, _ = make_client(httpx.Response(200, json=body))
    with client:
        return call(client)


@pytest.mark.parametrize(
    ("call", "body", "expected"),
    [
        # v3 SMS and OTP: only {"status"} documented; the sandbox's default adds the rest.
        (SEND_SMS, {"status": "ESME_ROK"}, (None, "ESME_ROK", None)),
        (SEND_SMS, {"status": "ESME_ROK", "id": "ab", "segments": "2", "x": [1]}, ("ab", "ESME_ROK", 2)),
        (lambda c: c.v3.send_otp(dst_number="56987688060", sms_content="1234"),
         {"status": "ESME_ROK"}, (None, "ESME_ROK", None)),
        (lambda c: c.v3.send_email(dst_email="a@b.cl", src_email="c@d.cl", subject="s",
                                   email_content="<p>x</p>"), {"id": 42}, ("42", None, None)),
        (lambda c: c.v3.send_whatsapp(src_number="56999944837", dst_number="56987688060",
                                      whatsapp_content="hola"), {}, (None, None, None)),
        (V1_SMS, {"id_sms": "s1"}, ("s1", None, None)),
        (lambda c: c.v1.send_email(dst_email="a@b.cl", subject="s", email_content="x"),
         {"id_email": 7}, ("7", None, None)),
        (lambda c: c.qr.send(number="56987688060", message="hola"),
         {"success": True, "message_id": "q1"}, ("q1", None, None)),
        (lambda c: c.qr.send_message_to_group(group_name="g", message="hola"), {},
         (None, None, None)),
    ],
)  # fmt: skip
def test_send_answers_read_as_documented(call: Call, body: Any, expected: tuple[Any, ...]) -> None:
    result = answer(call, body)
    assert (result.provider_id, result.status, result.segments) == expected
    assert result.raw == body


@pytest.mark.parametrize(
    ("call", "body", "expected"),
    [
        (lambda c: c.v1.check_balance(), {"balance": "1432"}, 1432),  # a string, as documented
        (lambda c: c.v3.email_balance(), {"balance": 2312}, 2312),
        (lambda c: c.v1.check_email_balance(), {"balance": "35123"}, 35123),
        (lambda c: c.qr.status(), {"status": "CONNECTED"}, "CONNECTED"),
        (lambda c: c.qr.qr(), {"qr": "2@abc"}, "2@abc"),
        (lambda c: c.qr.generate_invite_link(group_name="g"), {"link": "https://x"}, "https://x"),
    ],
)  # fmt: skip
def test_single_value_answers(call: Call, body: Any, expected: Any) -> None:
    assert answer(call, body) == expected


def test_listings_skip_entries_that_are_not_objects() -> None:
    body = {
        "delivery_status": {
            "id_delivery": 9,
            "messages": [
                {"status": "ENTREGADO", "id_sms": "s1"},
                "junk",
                {"status": "EN_COLA", "id_sms": 2},
            ],
        }
    }
    status = answer(lambda c: c.v1.check_delivery_status(id_delivery="9"), body)
    assert status.id_delivery == "9"
    assert [(m.provider_id, m.status) for m in status.messages] == [
        ("s1", "ENTREGADO"),
        ("2", "EN_COLA"),
    ]
    assert status.raw == body
    report = answer(
        lambda c: c.v3.sms_date_report(begin_date="2026-01-01", end_date="2026-01-02"),
        {"messages": [{"id": "a", "status": "DELIVRD"}, None]},
    )
    assert [(r.id, r.status) for r in report] == [("a", "DELIVRD")]
    chats = answer(
        lambda c: c.qr.last_messages(number="56987688060"),
        {"messages": [{"message_id": "m", "from": "569", "body": "b", "from_me": True}]},
    )
    assert [(m.message_id, m.number, m.message, m.from_me) for m in chats] == [
        ("m", "569", "b", True)
    ]
    wa = answer(lambda c: c.v3.whatsapp_messages(src_number="1", dst_number="2"), {})
    assert wa == ()  # fmt: skip


def test_email_events_read_under_either_documented_name() -> None:
    body = {
        "status": "ENVIADO",
        "events": [
            {"email_event": "ABIERTO", "event_timestamp": "t1"},
            {"event": "CLICKEADO", "timestamp": "t2"},
            {"x": 1},
        ],
    }
    status = answer(lambda c: c.v1.check_email_status_events(id_email="e1"), body)
    assert status.id == "e1"  # the answer names none: the id asked for
    assert [(e.event, e.timestamp) for e in status.events] == [
        ("ABIERTO", "t1"),
        ("CLICKEADO", "t2"),
    ]


def test_account_answers_tolerate_a_wrapper_and_numbers_as_text() -> None:
    clients = answer(
        lambda c: c.v3.list_clients(),
        {
            "data": {
                "free_sms_balance_by_country": [
                    {"id_country": 1, "country_name": "Chile", "balance": "10"}
                ],
                "clients": [
                    {
                        "id": 11,
                        "id_unique": "u1",
                        "balance": {
                            "sms_balance": [{"id_country": "1", "balance": 4}],
                            "email_balance": "3",
                        },
                    }
                ],
            }
        },
    )
    assert clients.free_sms_balance_by_country[0].balance == 10
    one = clients.client("u1")
    assert one is not None and (one.email_balance, one.sms_balances[0].id_country) == (3, 1)
    delivery = answer(
        lambda c: c.v3.get_delivery(id_delivery="5"), {"delivery": {"id_delivery": 5}}
    )
    assert delivery.id == "5"
    assert answer(
        lambda c: c.v3.add_balance(
            id_client="u1", amount=1, product=SubclientProduct.SMS, id_country=Country.CHILE
        ),
        {"message": "ok"},
    ).success


@pytest.mark.parametrize(
    ("call", "body", "named"),
    [
        (lambda c: c.v1.check_balance(), {"balance": "mil"}, "balance"),
        (lambda c: c.v1.check_balance(), {"balance": True}, "balance"),
        (lambda c: c.v1.check_balance(), {}, "balance"),
        (lambda c: c.v1.check_sms_status(id_sms="s"), {"status": {"a": 1}}, "status"),
        (lambda c: c.v3.get_sms(id_sms="s"), {"status": ""}, "status"),
        (lambda c: c.v3.whatsapp_status(message_id="m"), {"status": 5.5}, "status"),
        (lambda c: c.qr.qr(), {"qr": None}, "qr"),
        (lambda c: c.v3.sms_delivery_info(id_delivery="d"), {"messages": {"a": 1}}, "messages"),
        (lambda c: c.v3.sms_delivery_info(id_delivery="d"), {"messages": [{"id": "x"}]}, "status"),
        (lambda c: c.v3.get_delivery(id_delivery="d"), {"name": "x"}, "id"),
        (lambda c: c.v3.get_client(id_client="u"), {"name": "x"}, "neither id nor id_unique"),
        (lambda c: c.v3.list_clients(), {"clients": [{"name": "x"}]}, "clients.0"),
        (lambda c: c.v3.account(), ["not", "an", "object"], "answer"),
        (lambda c: c.v1.send_sms_bulk(messages=[{"dst_number": "56987688060", "sms_content": "a"}],
                                      delivery_name="d", deliver_at="2026-01-01 10:00:00"),
         {"messages": []}, "0 items for 1 inputs"),
    ],
)  # fmt: skip
def test_unusable_answers_are_malformed_naming_the_field(call: Call, body: Any, named: str) -> None:
    with pytest.raises(errors.MalformedResponse) as raised:
        answer(call, body)
    assert raised.value.reason == "malformed_response"
    assert "answer unusable" in str(raised.value) and named in str(raised.value)
