"""``client.qr``: the WhatsApp QR API at ``CONNECTUS_WHATSAPP_QR_URL`` (at the root).

The collection authenticates this API with a bearer token, the contract with
Basic auth like the other two: Basic unless the client was given a
``qr_bearer_token``.

Several reads are ``GET`` with a JSON body in the collection
(``get-last-messages {number}``). Some proxies drop GET bodies, so the same
fields also go in the query string; the contract accepts either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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

T = TypeVar("T")


def _messages(body: Any) -> tuple[QrMessage, ...]:
    return QrMessages.from_body(body).messages


class QrApi(SubApi):
    """Session (``qr``, ``status``), direct messages and group calls."""

    def qr(self) -> str:
        """``GET /qr``: the QR code data to pair the WhatsApp session."""
        return self._call("GET", "qr", lambda b: QrCode.from_body(b).qr)

    def status(self) -> str:
        """``GET /status``: the session status, e.g. ``CONNECTED``."""
        return self._call("GET", "status", lambda b: QrStatus.from_body(b).status)

    def send(self, *, number: str, message: str) -> SendResult:
        """``POST /send``; ``{"success": false}`` raises Rejected."""
        body = {"number": number, "message": message}
        return self._call("POST", "send", SendResult.from_body, json_body=body, send=True)

    def last_messages(self, *, number: str) -> tuple[QrMessage, ...]:
        """``GET /get-last-messages {number}``."""
        return self._get("get-last-messages", {"number": number}, _messages)

    # --- groups (``group_name`` is the API's ``groupName``) ----------------
    def create_group(
        self, *, name: str, numbers: Sequence[str], options: Mapping[str, Any] | None = None
    ) -> Ack:
        """``POST /create-group {name, numbers, options}``."""
        body = {"name": name, "numbers": list(numbers), "options": dict(options or {})}
        return self._post("create-group", body)

    def add_participants(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        return self._post("add-participants", {"groupName": group_name, "numbers": list(numbers)})

    def remove_participants(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        body = {"groupName": group_name, "numbers": list(numbers)}
        return self._post("remove-participants", body)

    def make_group_admins(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        body = {"groupName": group_name, "numbers": list(numbers)}
        return self._post("make-group-admins", body)

    def demote_group_admins(self, *, group_name: str, numbers: Sequence[str]) -> Ack:
        body = {"groupName": group_name, "numbers": list(numbers)}
        return self._post("demote-group-admins", body)

    def update_group_info(
        self,
        *,
        group_name: str,
        new_subject: str | None = None,
        new_description: str | None = None,
    ) -> Ack:
        """``POST /update-group-info {groupName, newSubject?, newDescription?}``."""
        if new_subject is None and new_description is None:
            raise ValueError("update_group_info needs new_subject or new_description")
        body = {
            "groupName": group_name,
            "newSubject": new_subject,
            "newDescription": new_description,
        }
        return self._post("update-group-info", body)

    def send_message_to_group(self, *, group_name: str, message: str) -> SendResult:
        """``POST /send-message-to-group {groupName, message}``: a send like ``/send``
        (its answer is not documented: ``{}`` is an acceptance without an id);
        ``success: false`` raises Rejected."""
        body = {"groupName": group_name, "message": message}
        return self._call(
            "POST", "send-message-to-group", SendResult.from_body, json_body=body, send=True
        )

    def generate_invite_link(self, *, group_name: str) -> str:
        """``GET /generate-invite-link {groupName}``."""
        return self._get(
            "generate-invite-link",
            {"groupName": group_name},
            lambda b: InviteLink.from_body(b).invite_link,
        )

    def last_group_messages(self, *, group_name: str) -> tuple[QrMessage, ...]:
        """``GET /get-last-group-messages {groupName}``."""
        return self._get("get-last-group-messages", {"groupName": group_name}, _messages)

    def _post(self, path: str, body: Mapping[str, Any]) -> Ack:
        # send=True: a group change answered 2xx with success=false must not pass as done.
        return self._call("POST", path, Ack.from_body, json_body=body, send=True)

    def _get(self, path: str, fields: Mapping[str, str], parse: Callable[[Any], T]) -> T:
        return self._call("GET", path, parse, params=fields, json_body=fields)

    def _call(self, method: str, path: str, parse: Callable[[Any], T], **kwargs: Any) -> T:
        return self._t.call(method, self._url(path), parse, bearer=True, **kwargs)
