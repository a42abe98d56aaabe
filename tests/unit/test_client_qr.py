"""client.qr: the WhatsApp QR API at the root of its own base URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectus_worker.worker.connectus import errors
from connectus_worker.worker.connectus.answers import Ack
from connectus_worker.worker.connectus.client import ConnectusClient
from tests.support.connectus import make_client

GROUP = "prueba con whatsapp qr"
NUMBERS = ["584141924112", "584148566479"]


@pytest.mark.parametrize(
    ("call", "path", "body"),
    [
        (lambda c: c.qr.create_group(name=GROUP, numbers=NUMBERS), "/create-group",
         {"name": GROUP, "numbers": NUMBERS, "options": {}}),
        (lambda c: c.qr.add_participants(group_name=GROUP, numbers=NUMBERS), "/add-participants",
         {"groupName": GROUP, "numbers": NUMBERS}),
        (lambda c: c.qr.remove_participants(group_name=GROUP, numbers=NUMBERS),
         "/remove-participants", {"groupName": GROUP, "numbers": NUMBERS}),
        (lambda c: c.qr.make_group_admins(group_name=GROUP, numbers=NUMBERS[:1]),
         "/make-group-admins", {"groupName": GROUP, "numbers": NUMBERS[:1]}),
        (lambda c: c.qr.demote_group_admins(group_name=GROUP, numbers=NUMBERS[:1]),
         "/demote-group-admins", {"groupName": GROUP, "numbers": NUMBERS[:1]}),
        (lambda c: c.qr.update_group_info(group_name=GROUP, new_subject="Nuevo"),
         "/update-group-info", {"groupName": GROUP, "newSubject": "Nuevo"}),
    ],
    ids=["create", "add", "remove", "make-admins", "demote", "update-info"],
)  # fmt: skip
def test_group_calls_post_json(
    call: Callable[[ConnectusClient], Ack], path: str, body: dict[str, Any]
) -> None:
    client, recorder = make_client(httpx.Response(200, json={"success": True, "extra": 1}))
    assert call(client).success is True
    assert (recorder.last.method, recorder.last.url.host) == ("POST", "whatsappqr.test")
    assert recorder.last.url.path == path
    assert json.loads(recorder.last.content) == body


def test_send_returns_the_message_id() -> None:
    answer = {"success": True, "message_id": "q1"}
    client, recorder = make_client(httpx.Response(200, json=answer))
    result = client.qr.send(number="584141992998", message="Hola")
    assert (result.provider_id, result.raw) == ("q1", answer)
    assert recorder.last.url.path == "/send"
    assert json.loads(recorder.last.content) == {"number": "584141992998", "message": "Hola"}


@pytest.mark.parametrize(
    ("answer", "expected_id"),
    [({"success": True, "message_id": "g1"}, "g1"), ({}, None)],
    ids=["chosen", "documented-empty"],
)
def test_send_to_group_is_a_send_with_the_message_id_when_named(
    answer: dict[str, Any], expected_id: str | None
) -> None:
    client, recorder = make_client(httpx.Response(200, json=answer))
    result = client.qr.send_message_to_group(group_name=GROUP, message="Hola")
    assert result.provider_id == expected_id
    assert (recorder.last.method, recorder.last.url.path) == ("POST", "/send-message-to-group")
    assert json.loads(recorder.last.content) == {"groupName": GROUP, "message": "Hola"}


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (409, {"success": False, "status": "DISCONNECTED",
               "error": "WhatsApp session not connected"}),
        (409, {"error": "Sesión desconectada"}),
        (400, {"status": "QR_PENDING"}),
        (200, {"success": False, "error": "client not connected"}),
    ],
    ids=["sandbox-409", "spanish-text", "qr-pending-400", "2xx-text"],
)  # fmt: skip
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.qr.send(number="584141992998", message="m"),
        lambda c: c.qr.send_message_to_group(group_name=GROUP, message="m"),
    ],
    ids=["send", "send-to-group"],
)
def test_a_disconnected_session_is_a_pause_not_a_failure(
    call: Callable[[ConnectusClient], Any], status: int, answer: dict[str, Any]
) -> None:
    client, _ = make_client(httpx.Response(status, json=answer))
    with pytest.raises(errors.SessionDisconnected) as raised:
        call(client)
    assert raised.value.outcome == "pause"


def test_status_answers_disconnected_as_a_value() -> None:
    client, _ = make_client(httpx.Response(200, json={"status": "DISCONNECTED"}))
    assert client.qr.status() == "DISCONNECTED"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.qr.send(number="1", message="m"),
        lambda c: c.qr.send_message_to_group(group_name=GROUP, message="m"),
        lambda c: c.qr.add_participants(group_name=GROUP, numbers=["1"]),
    ],
    ids=["send", "send-to-group", "add"],
)
def test_success_false_is_rejected(call: Callable[[ConnectusClient], Any]) -> None:
    client, _ = make_client(httpx.Response(200, json={"success": False, "error": "no session"}))
    with pytest.raises(errors.Rejected, match="no session"):
        call(client)


def test_unknown_group_is_not_found() -> None:
    client, _ = make_client(httpx.Response(404, json={"error": "Group not found"}))
    with pytest.raises(errors.NotFound):
        client.qr.generate_invite_link(group_name="nope")


@pytest.mark.parametrize(
    ("call", "path", "fields", "answer", "expected"),
    [
        (lambda c: [m.message for m in c.qr.last_messages(number="5841")], "/get-last-messages",
         {"number": "5841"},
         {"messages": [{"message_id": "a", "number": "5841", "message": "hi", "from_me": True}]},
         ["hi"]),
        (lambda c: c.qr.generate_invite_link(group_name=GROUP), "/generate-invite-link",
         {"groupName": GROUP}, {"invite_link": "https://chat.whatsapp.com/x"},
         "https://chat.whatsapp.com/x"),
        (lambda c: len(c.qr.last_group_messages(group_name=GROUP)), "/get-last-group-messages",
         {"groupName": GROUP}, {"messages": [{"message": "a"}, {"message": "b"}]}, 2),
    ],
    ids=["last-messages", "invite-link", "last-group-messages"],
)  # fmt: skip
def test_reads_send_fields_as_json_body_and_query(
    call: Callable[[ConnectusClient], Any],
    path: str,
    fields: dict[str, str],
    answer: Any,
    expected: Any,
) -> None:
    client, recorder = make_client(httpx.Response(200, json=answer))
    assert call(client) == expected
    assert (recorder.last.method, recorder.last.url.path) == ("GET", path)
    assert json.loads(recorder.last.content) == fields  # as the collection sends it
    assert dict(recorder.last.url.params) == fields  # for proxies that drop GET bodies


@pytest.mark.parametrize(
    ("call", "path", "answer", "expected"),
    [
        (lambda c: c.qr.qr(), "/qr", {"qr": "2@abc"}, "2@abc"),
        (lambda c: c.qr.status(), "/status", {"status": "CONNECTED"}, "CONNECTED"),
    ],
)
def test_session_calls(
    call: Callable[[ConnectusClient], str], path: str, answer: Any, expected: str
) -> None:
    client, recorder = make_client(httpx.Response(200, json=answer))
    assert call(client) == expected
    assert (recorder.last.method, recorder.last.url.path) == ("GET", path)


def test_update_group_info_needs_a_change() -> None:
    client, recorder = make_client(httpx.Response(200, json={}))
    with pytest.raises(ValueError):
        client.qr.update_group_info(group_name=GROUP)
    assert recorder.requests == []


def test_qr_uses_basic_auth_unless_given_a_bearer_token() -> None:
    client, recorder = make_client(httpx.Response(200, json={"status": "CONNECTED"}))
    client.qr.status()
    assert recorder.last.headers["authorization"].startswith("Basic ")


def test_qr_bearer_token_is_sent_to_the_qr_api_only_and_never_shown() -> None:
    token = "qr-token-0123456789"
    client, recorder = make_client(
        httpx.Response(401, json={"error": f"bad token {token}"}), qr_bearer_token=token
    )
    with pytest.raises(errors.AuthenticationFailed) as raised:
        client.qr.status()
    assert recorder.last.headers["authorization"] == f"Bearer {token}"
    assert token not in str(raised.value)
    assert token not in repr(client)
    with pytest.raises(errors.AuthenticationFailed):
        client.v3.email_balance()
    assert recorder.last.headers["authorization"].startswith("Basic ")
