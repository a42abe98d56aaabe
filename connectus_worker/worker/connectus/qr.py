"""``client.qr``: the WhatsApp QR API at ``CONNECTUS_WHATSAPP_QR_URL`` (at the root).

The collection authenticates this API with a bearer token, the contract with
Basic auth like the other two: Basic unless the client was given a
``qr_bearer_token``.

Several reads are ``GET`` with a JSON body in the collection
(``get-last-messages {number}``). Some proxies drop GET bodies, so the same
fields also go in the query string; the contract accepts either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from connectus_worker.worker.connectus.answers import (
    Ack,
    InviteLink,
    QrCode,
    QrMessage,
    QrMessages,
    QrStatus,
    SendResult,
)
from connectus_worker.worker.connectus.base import SubApi

A = TypeVar("A", QrMessages, InviteLink)


class QrApi(SubApi):
    """Session (``qr``, ``status``), direct messages and group calls.

    Group calls name the group ``group_name`` (the API's ``groupName``).
    """

    BEARER = True

    def qr(self) -> str:
        """``GET /qr``: the QR code data to pair the WhatsApp session."""
        return self._call("GET", QrCode.from_body, "qr").qr

    def status(self) -> str:
        """``GET /status``: the session status, e.g. ``CONNECTED``."""
        return self._call("GET", QrStatus.from_body, "status").status

    def send(self, *, number: str, message: str) -> SendResult:
        """``POST /send``; ``{"success": false}`` raises Rejected."""
        return self._send("send", {"number": number, "message": message})

    def last_messages(self, *, number: str) -> tuple[QrMessage, ...]:
        return self._read(QrMessages, "get-last-messages", {"number": number}).messages

    def create_group(
        self, *, name: str, numbers: Sequence[str], options: Mapping[str, Any] | None = None
    ) -> Ack:
        body = {"name": name, "numbers": list(numbers), "options": dict(options or {})}
        return self._change("create-group", body)

    def add_participants(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        return self._change("add-participants", {"groupName": group_name, "numbers": list(numbers)})

    def remove_participants(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        body = {"groupName": group_name, "numbers": list(numbers)}
        return self._change("remove-participants", body)

    def make_group_admins(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        body = {"groupName": group_name, "numbers": list(numbers)}
        return self._change("make-group-admins", body)

    def demote_group_admins(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        body = {"groupName": group_name, "numbers": list(numbers)}
        return self._change("demote-group-admins", body)

    def update_group_info(
        self, *, group_name: str, new_subject: str | None = None, new_description: str | None = None
    ) -> Ack:
        if new_subject is None and new_description is None:
            raise ValueError("update_group_info needs new_subject or new_description")
        body = {
            "groupName": group_name,
            "newSubject": new_subject,
            "newDescription": new_description,
        }
        return self._change("update-group-info", body)

    def send_message_to_group(self, *, group_name: str, message: str) -> SendResult:
        """``POST /send-message-to-group {groupName, message}``: a send like ``/send``
        (its answer is not documented: ``{}`` is an acceptance without an id);
        ``success: false`` raises Rejected."""
        return self._send("send-message-to-group", {"groupName": group_name, "message": message})

    def generate_invite_link(self, *, group_name: str) -> str:
        fields = {"groupName": group_name}
        return self._read(InviteLink, "generate-invite-link", fields).invite_link

    def last_group_messages(self, *, group_name: str) -> tuple[QrMessage, ...]:
        fields = {"groupName": group_name}
        return self._read(QrMessages, "get-last-group-messages", fields).messages

    def _change(self, path: str, body: Mapping[str, Any]) -> Ack:
        # send=True: a group change answered 2xx with success=false must not pass as done.
        return self._call("POST", Ack.from_body, path, json_body=body, send=True)

    def _read(self, answer: type[A], path: str, fields: Mapping[str, str]) -> A:
        return self._call("GET", answer.from_body, path, params=fields, json_body=fields)
