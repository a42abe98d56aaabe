"""api_v3 SMS: send_individual, send_otp, GET /sms/:id, delivery_info, date_report.

A send answers 200 ``{"status": "ESME_ROK", "id", "segments", "id_delivery"}`` when
accepted and charged; another SMPP name (``ESME_RINVDSTADR`` for a number of no
balance country, ``ESME_RTHROTTLED`` as a fault) means not accepted, not charged.
OTP: ``otp_units_per_segment`` units a segment; ``save_content="hash"`` stores
only the SHA-256 hex of the content. An SMS with ``id_client`` must carry
``id_country``, the country of ``dst_number`` (400 otherwise). With
``answers=documented`` a send answers exactly what the collection shows,
``{"status": "ESME_ROK"}``, with no id.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.charging import country_of, normalize_number, segments_of
from sandbox.config import ANSWERS_DOCUMENTED
from sandbox.errors import bad_request, not_found
from sandbox.records import sms_record
from sandbox.state import SMS
from sandbox.store import FLAG_HASHED, FLAG_OTP
from sandbox.web import Runtime, endpoint, json_ok, params, require, require_str

PREFIX = "/api_v3/sms"


def send_sms(rt: Runtime, data: dict[str, Any], *, otp: bool) -> dict[str, Any]:
    """Validate, charge and store one v3 SMS; the answer body."""
    raw_dst = require(data, "dst_number")
    content = require_str(data, "sms_content")
    dst = normalize_number(raw_dst)
    if dst is None:
        raise bad_request("dst_number", "dst_number must be a number in international format")
    save = data.get("save_content")
    if save not in (None, "", "hash"):
        raise bad_request("save_content", 'save_content must be "hash" when given')
    country = country_of(dst)
    if data.get("id_client") not in (None, "") and not otp:
        # The Subclient section: "The SMS API must include the destination country,
        # each balance is separated according to this value." (chosen: as id_country)
        given = data.get("id_country")
        if isinstance(given, str) and given.isdigit():  # a query or form parameter
            given = int(given)
        if given is None:
            raise bad_request("id_country", "id_country is required with id_client: the SMS "
                              "API must include the destination country")  # fmt: skip
        if isinstance(given, bool) or not isinstance(given, int) or given != country:
            raise bad_request("id_country", "id_country must be the country of dst_number")
    if country is None:
        return {"status": "ESME_RINVDSTADR"}
    segments = segments_of(content)
    units = segments * (rt.config.otp_units_per_segment if otp else 1)
    digest = hashlib.sha256(content.encode("utf-8")).digest()
    hashed = otp and save == "hash"
    state = rt.state
    row = state.accept(
        SMS,
        dst=dst,
        content=digest.hex() if hashed else content,
        units=units,
        segments=segments,
        country=country,
        src=data.get("src_number"),
        id_client=data.get("id_client"),
        id_delivery=data.get("id_delivery"),
        flags=(FLAG_OTP if otp else 0) | (FLAG_HASHED if hashed else 0),
        digest=digest,
    )
    table = state.tables[SMS]
    return {
        "status": "ESME_ROK",
        "id": table.id_of(row),
        "segments": segments,
        "id_delivery": state.deliveries.deliveries[table.delivery[row]].id,
    }


def routes(rt: Runtime) -> list[Route]:
    state = rt.state

    def answer(body: dict[str, Any]) -> Response:
        if rt.faults.config.answers == ANSWERS_DOCUMENTED:
            # The collection's saved 200 answer: {"status": "<string>"}, nothing else.
            return json_ok({"status": body["status"]})
        return json_ok(body)

    async def send_individual(request: Request) -> Response:
        return answer(send_sms(rt, await params(request), otp=False))

    async def send_otp(request: Request) -> Response:
        return answer(send_sms(rt, await params(request), otp=True))

    async def get_sms(request: Request) -> Response:
        row = state.tables[SMS].index_of(request.path_params["id"])
        if row is None:
            raise not_found()
        return json_ok(sms_record(state, row))

    async def delivery_info(request: Request) -> Response:
        data = await params(request)
        delivery = state.deliveries.get(require_str(data, "delivery_id"))
        if delivery is None:
            raise not_found()
        rows = [key & ((1 << 40) - 1) for key in delivery.members if key >> 40 == SMS]
        return json_ok(
            {"id_delivery": delivery.id, "messages": [sms_record(state, r) for r in rows]}
        )

    async def date_report(request: Request) -> Response:
        data = await params(request)
        begin = require_str(data, "begin_date")
        end = require_str(data, "end_date")
        bounds = state.time.day_bounds(begin, end)
        if bounds is None:
            field = "begin_date" if state.time.day_bounds(begin, begin) is None else "end_date"
            raise bad_request(field, f"{field} must be YYYY-MM-DD")
        created = state.tables[SMS].created
        # created_at only grows, so the range is two binary searches.
        first = bisect.bisect_left(created, bounds[0])
        last = bisect.bisect_left(created, bounds[1])
        return json_ok({"messages": [sms_record(state, r) for r in range(first, last)]})

    return [
        endpoint(rt, "POST", f"{PREFIX}/send_individual", send_individual, send=True, smpp=True),
        endpoint(rt, "POST", f"{PREFIX}/send_otp", send_otp, send=True, smpp=True),
        endpoint(rt, "GET", f"{PREFIX}/delivery_info", delivery_info),
        endpoint(rt, "GET", f"{PREFIX}/date_report", date_report),
        endpoint(rt, "GET", PREFIX + "/{id}", get_sms),
    ]
