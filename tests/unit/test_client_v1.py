"""client.v1: query parameters for every call, as the v1 document sends them; tolerant parsing."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from connectus_worker.worker.connectus import errors
from connectus_worker.worker.connectus.answers import BulkItem
from connectus_worker.worker.connectus.v1 import MAX_BULK_SMS
from tests.support.connectus import make_client


def test_send_sms_posts_query_parameters_and_reads_id_sms() -> None:
    client, recorder = make_client(httpx.Response(200, json={"id_sms": "f047"}))
    result = client.v1.send_sms(dst_number="56990324203", sms_content="So long")
    assert result.provider_id == "f047"
    request = recorder.last
    assert (request.method, request.url.host, request.url.path) == (
        "POST",
        "api.test",
        "/api_v1/send_sms",
    )
    # requests.post(url, params=params), as in the document: no body at all.
    assert recorder.last_query() == {"dst_number": "56990324203", "sms_content": "So long"}
    assert request.content == b"" and "content-type" not in request.headers


def test_send_sms_bulk_sends_messages_as_a_json_string() -> None:
    answer = {
        "id_delivery": "0a45",
        "messages": [{"id_sms": "6bfb"}, {"error": "NUMERO_INVALIDO", "dst_number": "123"}],
    }
    client, recorder = make_client(httpx.Response(200, json=answer))
    messages = [
        {"dst_number": "56944444444", "sms_content": "ships", "extra": "dropped"},
        {"dst_number": "123", "sms_content": "fish"},
    ]
    result = client.v1.send_sms_bulk(
        messages=messages, delivery_name="Douglas Adams quotes", deliver_at="2018-03-25 10:30:00"
    )
    form = recorder.last_query()
    assert recorder.last.url.path == "/api_v1/send_sms_bulk" and recorder.last.content == b""
    # The document's example: dst_number as a JSON number (long).
    assert json.loads(form["messages"]) == [
        {"dst_number": 56944444444, "sms_content": "ships"},
        {"dst_number": 123, "sms_content": "fish"},
    ]
    assert (form["delivery_name"], form["deliver_at"]) == (
        "Douglas Adams quotes",
        "2018-03-25 10:30:00",
    )
    assert result.id_delivery == "0a45"
    assert [(i.provider_id, i.error, i.destination, i.ok) for i in result.items] == [
        ("6bfb", None, None, True),
        (None, "NUMERO_INVALIDO", "123", False),
    ]


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"dst_number": "56911111111", "sms_content": "x"}] * (MAX_BULK_SMS + 1),
        [{"dst_number": "56911111111"}],
        [{"dst_number": "", "sms_content": "x"}],
        [{"dst_number": "+56 9 1111 1111", "sms_content": "x"}],
    ],
    ids=["empty", "1001", "no-content", "empty-number", "not-digits"],
)
def test_send_sms_bulk_is_validated_before_sending(messages: list[dict[str, str]]) -> None:
    client, recorder = make_client(httpx.Response(200, json={}))
    with pytest.raises(errors.InvalidRequest):
        client.v1.send_sms_bulk(
            messages=messages, delivery_name="d", deliver_at="2018-03-25 10:30:00"
        )
    assert recorder.requests == []


def test_a_bulk_over_the_query_budget_is_refused_before_sending_and_split_by_bulk_groups() -> None:
    # A thousand messages don't fit a query string (servers cap the request line
    # near 8 KiB, httpx at 64 KiB): bulk_groups splits them into calls that fit.
    answer = {"id_delivery": "d", "messages": [{"id_sms": str(i)} for i in range(MAX_BULK_SMS)]}
    client, recorder = make_client(httpx.Response(200, json=answer))
    messages = [{"dst_number": "56911111111", "sms_content": f"x{i}"} for i in range(MAX_BULK_SMS)]
    when = "2018-03-25 10:30:00"
    with pytest.raises(errors.InvalidRequest, match="query string"):
        client.v1.send_sms_bulk(messages=messages, delivery_name="d", deliver_at=when)
    assert recorder.requests == []
    groups = client.v1.bulk_groups(messages, delivery_name="d", deliver_at=when)
    assert groups[0][0] == 0 and groups[-1][1] == MAX_BULK_SMS and len(groups) > 1
    assert all(a[1] == b[0] for a, b in itertools.pairwise(groups))
    for start, end in groups:
        query = {"messages": json.dumps([{"dst_number": 56911111111, "sms_content": m["sms_content"]}
                                         for m in messages[start:end]], ensure_ascii=False),
                 "delivery_name": "d", "deliver_at": when}  # fmt: skip
        assert len(urlencode(query)) <= client.v1.max_query_bytes
        if end < MAX_BULK_SMS:  # each group is as long as it can be
            query["messages"] = json.dumps(
                [{"dst_number": 56911111111, "sms_content": m["sms_content"]}
                 for m in messages[start:end + 1]], ensure_ascii=False)  # fmt: skip
            assert len(urlencode(query)) > client.v1.max_query_bytes


def test_a_bulk_answer_with_a_different_count_is_malformed() -> None:
    # Items are matched to inputs by position; a shorter list can't be matched.
    client, _ = make_client(httpx.Response(200, json={"id_delivery": "d", "messages": []}))
    with pytest.raises(errors.MalformedResponse):
        client.v1.send_sms_bulk(
            messages=[{"dst_number": "56911111111", "sms_content": "x"}],
            delivery_name="d",
            deliver_at="2018-03-25 10:30:00",
        )


@pytest.mark.parametrize(
    ("call", "path", "query", "answer", "expected"),
    [
        (
            lambda c: (c.v1.check_sms_status(id_sms="6bfb").provider_id,
                       c.v1.check_sms_status(id_sms="6bfb").status),
            "/api_v1/check_sms_status",
            {"id_sms": "6bfb"},
            {"status": "ENTREGADO"},
            ("6bfb", "ENTREGADO"),
        ),
        (
            lambda c: [(m.provider_id, m.status) for m in c.v1.check_delivery_status(
                id_delivery="0a45").messages],
            "/api_v1/check_delivery_status",
            {"id_delivery": "0a45"},
            {"delivery_status": {"id_delivery": "0a45", "delivery_name": "n",
                                 "messages": [{"status": "PROGRAMADO", "id_sms": "6bfb"}]}},
            [("6bfb", "PROGRAMADO")],
        ),
        (lambda c: c.v1.check_balance(), "/api_v1/check_balance", {}, {"balance": "1432"}, 1432),
        (
            lambda c: c.v1.check_email_balance(),
            "/api_v1/check_email_balance", {}, {"balance": "35123"}, 35123,
        ),
        (
            lambda c: [e.event for e in c.v1.check_email_status_events(id_email="e1").events],
            "/api_v1/check_email_status_events",
            {"id_email": "e1"},
            {"status": "ENTREGADO", "events": [{"timestamp": "05-03-19 17:05:25",
                                                "event": "ABIERTO"},
                                               {"event_timestamp": "t", "email_event": "CLICKEADO"}]},
            ["ABIERTO", "CLICKEADO"],
        ),
    ],
    ids=["check_sms_status", "check_delivery_status", "check_balance", "check_email_balance",
         "check_email_status_events"],
)  # fmt: skip
def test_v1_lookups_use_query_parameters(
    call: Any, path: str, query: dict[str, str], answer: Any, expected: Any
) -> None:
    client, recorder = make_client(httpx.Response(200, json=answer))
    assert call(client) == expected
    assert (recorder.last.method, recorder.last.url.path) == ("GET", path)
    assert dict(recorder.last.url.params) == query
    assert recorder.last.content == b""


def test_send_email_omits_absent_optionals() -> None:
    client, recorder = make_client(httpx.Response(200, json={"id_email": "f047"}))
    result = client.v1.send_email(dst_email="a@b.cl", email_content="x")  # subject optional
    assert result.provider_id == "f047"
    assert recorder.last_query() == {"dst_email": "a@b.cl", "email_content": "x"}
    assert recorder.last.content == b""


def test_send_email_bulk() -> None:
    answer = {
        "id_delivery": "d",
        "messages": [{"id_email": "e1"}, {"error": "bad address", "dst_email": "nope"}],
    }
    client, recorder = make_client(httpx.Response(200, json=answer))
    emails = [
        {"dst_email": "a@b.cl", "subject": "S", "email_content": "x"},
        {"dst_email": "nope", "subject": "S", "email_content": "y", "sender": "Me"},
    ]
    result = client.v1.send_email_bulk(
        emails=emails, delivery_name="n", deliver_at="2019-03-25 10:30:00", src_email="j@e.com"
    )
    form = recorder.last_query()
    assert recorder.last.url.path == "/api_v1/send_email_bulk" and recorder.last.content == b""
    assert json.loads(form["emails"]) == emails
    assert form["src_email"] == "j@e.com"
    assert result.items == (
        BulkItem("e1", None, None),
        BulkItem(None, "bad address", "nope"),
    )


def test_send_email_bulk_refuses_an_incomplete_email() -> None:
    client, recorder = make_client(httpx.Response(200, json={}))
    with pytest.raises(errors.InvalidRequest):
        client.v1.send_email_bulk(
            emails=[{"dst_email": "a@b.cl", "subject": "no content"}],
            delivery_name="n",
            deliver_at="2019-03-25 10:30:00",
        )
    assert recorder.requests == []


def test_a_balance_that_is_not_a_number_is_malformed() -> None:
    client, _ = make_client(httpx.Response(200, json={"balance": "lots"}))
    with pytest.raises(errors.MalformedResponse):
        client.v1.check_balance()
