"""The WhatsApp QR API, at the root: session, direct messages and groups.

Auth: HTTP Basic like the other APIs, or ``Authorization: Bearer <api key>`` (the
collection sends a bearer token here). Lookups take their parameters from a JSON
body (as the collection does, even on GET) or from the query string, and answer
on GET and POST. Sent messages are recorded in the ledger as product
``whatsapp_qr`` (1 unit each) although this API draws on no balance. An unknown
group is a 404. With ``answers=documented`` the two sends, whose answers the
collection does not show, answer ``{}``.

Pairing: ``GET /status`` answers the session's state, ``CONNECTED`` or
``DISCONNECTED`` (``PUT /_sandbox/qr_session`` switches it). While it is not
connected every call but ``/qr`` and ``/status`` is refused with HTTP 409
``{"success": false, "status": "DISCONNECTED", "error": "WhatsApp session not
connected"}``: nothing is recorded or charged.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.charging import normalize_number
from sandbox.config import ANSWERS_DOCUMENTED
from sandbox.errors import ApiError, bad_request, not_found
from sandbox.state import QR, QR_CONNECTED
from sandbox.web import AUTH_BASIC_OR_BEARER, Runtime, endpoint, json_ok, params, require_str

_GROUP = "group:"


def _numbers(data: dict[str, Any]) -> list[str]:
    raw = data.get("numbers")
    if not isinstance(raw, list) or not raw:
        raise bad_request("numbers", "numbers must be a non-empty array")
    out = [normalize_number(n) for n in raw]
    if any(n is None for n in out):
        raise bad_request("numbers", "every number must be in international format")
    return [n for n in out if n is not None]


def _group_json(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": group["name"],
        "description": group["description"],
        "participants": sorted(group["participants"]),
        "admins": sorted(group["admins"]),
    }


def routes(rt: Runtime) -> list[Route]:
    state = rt.state

    def paired() -> None:
        """Refuse a call that needs the session while it is not connected."""
        if state.qr_status != QR_CONNECTED:
            extra = {"success": False, "status": state.qr_status}
            raise ApiError(409, "WhatsApp session not connected", extra=extra)

    def group_of(data: dict[str, Any]) -> dict[str, Any]:
        group = state.qr_groups.get(require_str(data, "groupName"))
        if group is None:
            raise not_found()
        return group

    def history(key: str, *, group: bool) -> list[dict[str, Any]]:
        table = state.tables[QR]
        out = []
        for row in state.qr_by_number.get(key, ()):
            item: dict[str, Any] = {"message_id": table.id_of(row)}
            item["group" if group else "number"] = key.removeprefix(_GROUP)
            item["message"] = table.content[row]
            item["from_me"] = bool(table.flags[row])
            item["timestamp"] = int(table.created[row])
            out.append(item)
        return out

    def sent(row: int) -> Response:
        if rt.faults.config.answers == ANSWERS_DOCUMENTED:
            # The collection saves no answer of either send: an empty object.
            return json_ok({})
        return json_ok({"success": True, "message_id": state.tables[QR].id_of(row)})

    async def qr(request: Request) -> Response:
        return json_ok({"qr": f"2@sandbox,{rt.config.api_user},{os.urandom(8).hex()}"})

    async def status(request: Request) -> Response:
        return json_ok({"status": state.qr_status})

    async def send(request: Request) -> Response:
        paired()
        data = await params(request)
        number = normalize_number(require_str(data, "number"))
        if number is None:
            raise bad_request("number", "number must be in international format")
        row = state.record_qr(number, require_str(data, "message"))
        return sent(row)

    async def last_messages(request: Request) -> Response:
        paired()
        number = normalize_number(require_str(await params(request), "number"))
        if number is None:
            raise bad_request("number", "number must be in international format")
        return json_ok({"messages": history(number, group=False)})

    async def create_group(request: Request) -> Response:
        paired()
        data = await params(request)
        name = require_str(data, "name")
        if name in state.qr_groups:
            raise bad_request("name", "A group with that name exists")
        numbers = _numbers(data)
        group = {"name": name, "description": "", "participants": set(numbers), "admins": set()}
        state.qr_groups[name] = group
        return json_ok({"success": True, "group": _group_json(group)})

    async def change_members(request: Request) -> Response:
        paired()
        data = await params(request)
        group = group_of(data)
        numbers = _numbers(data)
        action = request.url.path.strip("/")
        if action == "add-participants":
            group["participants"].update(numbers)
        elif action == "remove-participants":
            group["participants"].difference_update(numbers)
            group["admins"].difference_update(numbers)
        else:
            missing = [n for n in numbers if n not in group["participants"]]
            if missing:
                raise bad_request("numbers", f"Not participants: {', '.join(missing)}")
            if action == "make-group-admins":
                group["admins"].update(numbers)
            else:
                group["admins"].difference_update(numbers)
        return json_ok({"success": True, "group": _group_json(group)})

    async def update_info(request: Request) -> Response:
        paired()
        data = await params(request)
        group = group_of(data)
        subject = data.get("newSubject")
        if subject:
            subject = str(subject)
            if subject != group["name"] and subject in state.qr_groups:
                raise bad_request("newSubject", "A group with that name exists")
            old = group["name"]
            del state.qr_groups[old]
            group["name"] = subject
            state.qr_groups[subject] = group
            if _GROUP + old in state.qr_by_number:
                state.qr_by_number[_GROUP + subject] = state.qr_by_number.pop(_GROUP + old)
        if data.get("newDescription") is not None:
            group["description"] = str(data["newDescription"])
        return json_ok({"success": True, "group": _group_json(group)})

    async def send_to_group(request: Request) -> Response:
        paired()
        data = await params(request)
        group = group_of(data)
        row = state.record_qr(_GROUP + group["name"], require_str(data, "message"))
        return sent(row)

    async def invite_link(request: Request) -> Response:
        paired()
        group_of(await params(request))
        return json_ok({"invite_link": f"https://chat.whatsapp.com/{os.urandom(11).hex()}"})

    async def group_messages(request: Request) -> Response:
        paired()
        group = group_of(await params(request))
        return json_ok({"messages": history(_GROUP + group["name"], group=True)})

    get_or_post = ["GET", "POST"]
    auth = AUTH_BASIC_OR_BEARER
    return [
        endpoint(rt, "GET", "/qr", qr, auth=auth),
        endpoint(rt, "GET", "/status", status, auth=auth),
        endpoint(rt, "POST", "/send", send, send=True, auth=auth),
        endpoint(rt, get_or_post, "/get-last-messages", last_messages, auth=auth),
        endpoint(rt, "POST", "/create-group", create_group, auth=auth),
        endpoint(rt, "POST", "/add-participants", change_members, auth=auth),
        endpoint(rt, "POST", "/remove-participants", change_members, auth=auth),
        endpoint(rt, "POST", "/make-group-admins", change_members, auth=auth),
        endpoint(rt, "POST", "/demote-group-admins", change_members, auth=auth),
        endpoint(rt, "POST", "/update-group-info", update_info, auth=auth),
        endpoint(rt, "POST", "/send-message-to-group", send_to_group, send=True, auth=auth),
        endpoint(rt, get_or_post, "/generate-invite-link", invite_link, auth=auth),
        endpoint(rt, get_or_post, "/get-last-group-messages", group_messages, auth=auth),
    ]
