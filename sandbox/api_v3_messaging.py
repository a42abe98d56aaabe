"""api_v3 e-mail and WhatsApp: sends, status lookups, the e-mail balance.

E-mail and WhatsApp cost 1 unit a message ("homogeneous costs"). Any
``src_email`` is accepted: the sandbox has no origin-address verification.
E-mail sends answer ``{"id"}`` as the collection shows; with ``answers=documented``
a WhatsApp send, whose answer the collection does not show, answers ``{}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.charging import normalize_number
from sandbox.config import ANSWERS_DOCUMENTED
from sandbox.errors import bad_request, not_found
from sandbox.records import email_events, whatsapp_record
from sandbox.state import EMAIL, WHATSAPP
from sandbox.store import STATUS_NAMES
from sandbox.web import Runtime, endpoint, json_ok, params, require_str

PREFIX = "/api_v3"


def valid_email(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(at and local and "." in domain and " " not in value)


def send_email(rt: Runtime, data: dict[str, Any], *, with_refs: bool) -> int:
    """Validate, charge and store one e-mail; its row in the e-mail table."""
    dst = require_str(data, "dst_email")
    if not valid_email(dst):
        raise bad_request("dst_email", "dst_email is not an e-mail address")
    src = require_str(data, "src_email")
    if not valid_email(src):
        raise bad_request("src_email", "src_email is not an e-mail address")
    require_str(data, "subject")
    content = require_str(data, "email_content")
    return rt.state.accept(
        EMAIL,
        dst=dst,
        content=content,
        units=1,
        src=src,
        id_client=data.get("id_client") if with_refs else None,
        id_delivery=data.get("id_delivery") if with_refs else None,
    )


def routes(rt: Runtime) -> list[Route]:
    state = rt.state

    async def send_single(request: Request) -> Response:
        row = send_email(rt, await params(request), with_refs=True)
        return json_ok({"id": state.tables[EMAIL].id_of(row)})

    async def send_otp_email(request: Request) -> Response:
        row = send_email(rt, await params(request), with_refs=False)
        return json_ok({"id": state.tables[EMAIL].id_of(row)})

    async def email_balance(request: Request) -> Response:
        return json_ok({"balance": state.free.email})

    async def get_email(request: Request) -> Response:
        table = state.tables[EMAIL]
        row = table.index_of(request.path_params["id"])
        if row is None:
            raise not_found()
        return json_ok(
            {
                "id": table.id_of(row),
                "status": STATUS_NAMES[table.status[row]],
                "events": email_events(state, row),
            }
        )

    async def send_message(request: Request) -> Response:
        data = await params(request)
        src = normalize_number(require_str(data, "src_number"))
        if src is None:
            raise bad_request("src_number", "src_number must be a number in international format")
        dst = normalize_number(require_str(data, "dst_number"))
        if dst is None:
            raise bad_request("dst_number", "dst_number must be a number in international format")
        content = require_str(data, "whatsapp_content")
        row = state.accept(
            WHATSAPP,
            dst=dst,
            content=content,
            units=1,
            src=src,
            id_client=data.get("id_client"),
            id_delivery=data.get("id_delivery"),
        )
        if rt.faults.config.answers == ANSWERS_DOCUMENTED:
            # The collection saves no answer of send_message: an empty object.
            return json_ok({})
        table = state.tables[WHATSAPP]
        return json_ok({"message_id": table.id_of(row), "status": STATUS_NAMES[table.status[row]]})

    async def whatsapp_status(request: Request) -> Response:
        data = await params(request)
        table = state.tables[WHATSAPP]
        row = table.index_of(require_str(data, "message_id"))
        if row is None:
            raise not_found()
        return json_ok({"message_id": table.id_of(row), "status": STATUS_NAMES[table.status[row]]})

    async def whatsapp_messages(request: Request) -> Response:
        data = await params(request)
        src_raw, dst_raw = data.get("src_number"), data.get("dst_number")
        if not src_raw and not dst_raw:
            raise bad_request("dst_number", "Give dst_number and/or src_number")
        src = normalize_number(src_raw) if src_raw else None
        dst = normalize_number(dst_raw) if dst_raw else None
        if src_raw and src is None:
            raise bad_request("src_number")
        if dst_raw and dst is None:
            raise bad_request("dst_number")
        table = state.tables[WHATSAPP]
        rows = state.by_dst.get(int(dst), ()) if dst else range(len(table))
        out = [whatsapp_record(state, r) for r in rows if src is None or table.src[r] == src]
        return json_ok({"messages": out})

    return [
        endpoint(rt, "POST", f"{PREFIX}/email/send_single", send_single, send=True),
        endpoint(rt, "POST", f"{PREFIX}/email/send_otp_email", send_otp_email, send=True),
        endpoint(rt, "GET", f"{PREFIX}/email/balance", email_balance),
        endpoint(rt, "GET", PREFIX + "/email/{id}", get_email),
        endpoint(rt, "POST", f"{PREFIX}/whatsapp/send_message", send_message, send=True),
        endpoint(rt, "GET", f"{PREFIX}/whatsapp/status", whatsapp_status),
        endpoint(rt, "GET", f"{PREFIX}/whatsapp/messages", whatsapp_messages),
    ]
