"""api_v1 (legacy, "API v.1.3"): parameters in the query string, as documented.

Every example of the v1 document sends its parameters with
``requests.post(url, params=...)``: in the query string, no body. By default
(``v1_params=query``) a v1 call with a body is a 400 on ``body``, and the
``messages`` array of ``send_sms_bulk`` must give ``dst_number`` as a JSON
number (the document's type ``long`` and its example); ``v1_params=any`` also
takes a form or JSON body and numbers as strings.

``dst_number`` must be an 11-digit Chilean mobile (``569…``); in a bulk call a bad
message is a per-message ``{"error": "NUMERO_INVALIDO", "dst_number"}`` and the
rest are still sent. Bulk calls create a delivery named ``delivery_name`` that
executes at ``deliver_at`` (local time; now when omitted). Balances answer as
strings, as documented.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.api_v3_messaging import valid_email
from sandbox.charging import is_v1_number, normalize_number, segments_of
from sandbox.config import V1_PARAMS_QUERY
from sandbox.directory import Delivery
from sandbox.errors import ApiError, bad_request, not_found
from sandbox.records import email_events
from sandbox.state import EMAIL, SMS, SandboxState
from sandbox.store import STATUS_NAMES
from sandbox.web import Runtime, endpoint, json_ok, params, require_str

PREFIX = "/api_v1"
CHILE = 1


def _sms(state: SandboxState, item: dict[str, Any], delivery: Delivery | None) -> int:
    dst = normalize_number(item.get("dst_number"))
    if dst is None or not is_v1_number(dst):
        raise ApiError(400, "NUMERO_INVALIDO", field="dst_number")
    content = require_str(item, "sms_content")
    segments = segments_of(content)
    return state.accept(
        SMS, dst=dst, content=content, units=segments, segments=segments, country=CHILE,
        delivery=delivery,
    )  # fmt: skip


def _email(
    state: SandboxState, item: dict[str, Any], src: object, delivery: Delivery | None
) -> int:
    dst = require_str(item, "dst_email")
    if not valid_email(dst):
        raise bad_request("dst_email", "dst_email is not an e-mail address")
    content = require_str(item, "email_content")
    src_email = src or item.get("src_email") or state.account["email"]
    return state.accept(EMAIL, dst=dst, content=content, units=1, src=src_email, delivery=delivery)


def _array(data: dict[str, Any], field: str, limit: int) -> list[Any]:
    value = data.get(field)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise bad_request(field, f"{field} must be a JSON array") from exc
    if not isinstance(value, list) or not value:
        raise bad_request(field, f"{field} must be a non-empty JSON array")
    if len(value) > limit:
        raise bad_request(field, f"At most {limit} items per call")
    return value


def _bulk_delivery(state: SandboxState, data: dict[str, Any], product: int) -> Delivery:
    name = require_str(data, "delivery_name")
    deliver_at = data.get("deliver_at") or state.time.format(state.clock())
    due = state.time.parse_datetime(deliver_at)
    if due is None:
        raise bad_request("deliver_at", "deliver_at must be YYYY-MM-DD HH:MM:SS")
    return state.deliveries.create(name, str(deliver_at).strip(), due, product)


async def v1_params(rt: Runtime, request: Request) -> dict[str, Any]:
    """The call's parameters: the query string, plus a body only when relaxed."""
    if rt.faults.config.v1_params == V1_PARAMS_QUERY and (await request.body()).strip():
        raise bad_request(
            "body",
            "api_v1 takes its parameters in the query string, as the v1 document's "
            "examples send them (the sandbox's v1_params=any also takes a body)",
        )
    return await params(request)


def _documented_numbers(rt: Runtime, messages: list[Any]) -> None:
    """Strict mode: each ``dst_number`` in ``messages`` is a JSON number, as documented."""
    if rt.faults.config.v1_params != V1_PARAMS_QUERY:
        return
    for index, item in enumerate(messages):
        number = item.get("dst_number") if isinstance(item, dict) else None
        if isinstance(number, str):
            raise bad_request(
                "messages",
                f"messages[{index}].dst_number must be a number (long), as the v1 document "
                "shows, not a string",
            )


def routes(rt: Runtime) -> list[Route]:
    state = rt.state
    limit = rt.config.bulk_max

    async def send_sms(request: Request) -> Response:
        row = _sms(state, await v1_params(rt, request), None)
        return json_ok({"id_sms": state.tables[SMS].id_of(row)})

    async def send_sms_bulk(request: Request) -> Response:
        data = await v1_params(rt, request)
        messages = _array(data, "messages", limit)
        _documented_numbers(rt, messages)
        delivery = _bulk_delivery(state, data, 1)
        answers: list[dict[str, Any]] = []
        for item in messages:
            item = item if isinstance(item, dict) else {}
            try:
                row = _sms(state, item, delivery)
            except ApiError as exc:
                answers.append({"error": exc.message, "dst_number": item.get("dst_number")})
            else:
                answers.append({"id_sms": state.tables[SMS].id_of(row)})
        state.schedule_delivery(delivery)
        return json_ok({"id_delivery": delivery.id, "messages": answers})

    async def check_sms_status(request: Request) -> Response:
        table = state.tables[SMS]
        row = table.index_of(require_str(await v1_params(rt, request), "id_sms"))
        if row is None:
            raise not_found()
        return json_ok({"status": STATUS_NAMES[table.status[row]]})

    async def check_delivery_status(request: Request) -> Response:
        delivery = state.deliveries.get(require_str(await v1_params(rt, request), "id_delivery"))
        if delivery is None:
            raise not_found()
        table = state.tables[SMS]
        mask = (1 << 40) - 1
        messages = [
            {"status": STATUS_NAMES[table.status[key & mask]], "id_sms": table.id_of(key & mask)}
            for key in delivery.members
            if key >> 40 == SMS
        ]
        body = {"id_delivery": delivery.id, "delivery_name": delivery.name, "messages": messages}
        return json_ok({"delivery_status": body})

    async def check_balance(request: Request) -> Response:
        return json_ok({"balance": str(state.free.sms.get(CHILE, 0))})

    async def send_email(request: Request) -> Response:
        data = await v1_params(rt, request)
        row = _email(state, data, data.get("src_email"), None)
        return json_ok({"id_email": state.tables[EMAIL].id_of(row)})

    async def send_email_bulk(request: Request) -> Response:
        data = await v1_params(rt, request)
        emails = _array(data, "emails", limit)
        delivery = _bulk_delivery(state, data, 3)
        answers: list[dict[str, Any]] = []
        for item in emails:
            item = item if isinstance(item, dict) else {}
            try:
                row = _email(state, item, data.get("src_email"), delivery)
            except ApiError as exc:
                answers.append({"error": exc.message, "dst_email": item.get("dst_email")})
            else:
                answers.append({"id_email": state.tables[EMAIL].id_of(row)})
        state.schedule_delivery(delivery)
        return json_ok({"id_delivery": delivery.id, "messages": answers})

    async def check_email_status_events(request: Request) -> Response:
        table = state.tables[EMAIL]
        row = table.index_of(require_str(await v1_params(rt, request), "id_email"))
        if row is None:
            raise not_found()
        status = STATUS_NAMES[table.status[row]]
        return json_ok({"status": status, "events": email_events(state, row)})

    async def check_email_balance(request: Request) -> Response:
        return json_ok({"balance": str(state.free.email)})

    return [
        endpoint(rt, "POST", f"{PREFIX}/send_sms", send_sms, send=True),
        endpoint(rt, "POST", f"{PREFIX}/send_sms_bulk", send_sms_bulk, send=True),
        endpoint(rt, "GET", f"{PREFIX}/check_sms_status", check_sms_status),
        endpoint(rt, "GET", f"{PREFIX}/check_delivery_status", check_delivery_status),
        endpoint(rt, "GET", f"{PREFIX}/check_balance", check_balance),
        endpoint(rt, "POST", f"{PREFIX}/send_email", send_email, send=True),
        endpoint(rt, "POST", f"{PREFIX}/send_email_bulk", send_email_bulk, send=True),
        endpoint(rt, "GET", f"{PREFIX}/check_email_status_events", check_email_status_events),
        endpoint(rt, "GET", f"{PREFIX}/check_email_balance", check_email_balance),
    ]
