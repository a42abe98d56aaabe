"""The admin API under ``/_sandbox`` (no auth; the sandbox is a test double).

- ``GET  /_sandbox/health`` → ``{"status": "ok", "uptime_s"}``
- ``GET  /_sandbox/stats`` → ``{"requests": {"<METHOD path>": {"<status>": n}},
  "webhooks": {...}, "messages": {product: n}, "charges": n, "scheduled": n,
  "sends_in_flight": n}`` (status ``dropped`` counts dropped-after-accept answers;
  ``sends_in_flight``: send calls received and not answered yet)
- ``GET  /_sandbox/ledger?since=<charge_id>&limit=<n>`` → ``{"charges": [charge],
  "next": <since for the next read>, "total": n}``; a charge is ``{charge_id,
  product, provider_id, dst, units, content_sha256, id_client, id_delivery, at}``
  (``at`` in epoch seconds)
- ``GET  /_sandbox/ledger/summary`` → totals by product and duplicate groups
- ``GET|PUT /_sandbox/faults`` → the :class:`FaultConfig` fields (PUT: a partial update;
  reseeds the fault RNG)
- ``PUT  /_sandbox/account`` ``{sms_status_hook_url?, sms_incoming_hook_url?}`` → account
- ``PUT  /_sandbox/balance`` ``{product, amount, id_country?, id_client?}`` sets a balance
- ``PUT  /_sandbox/qr_session`` ``{status: "CONNECTED"|"DISCONNECTED"}`` pairs or unpairs
  the WhatsApp QR session (GET /status; while disconnected QR calls answer 409)
- ``POST /_sandbox/incoming_sms`` ``{src_number, sms_content, dst_number?, src_provider?}``
- ``POST /_sandbox/email_event`` ``{id, event: "ABIERTO"|"CLICKEADO"}``
- ``GET  /_sandbox/s/{code}`` follows a short link (counts a click, 302)
- ``POST /_sandbox/reset`` ``{keep_faults?: bool}`` → back to the start-up config
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.charging import COUNTRY_NAMES, PRODUCT_SMS, PRODUCTS
from sandbox.errors import ApiError, bad_request, not_found
from sandbox.records import charge_record
from sandbox.state import EMAIL, QR_STATUSES, TABLE_PRODUCTS
from sandbox.web import AUTH_NONE, Runtime, endpoint, json_ok, params, require_int, require_str

PREFIX = "/_sandbox"


def ledger_summary(rt: Runtime) -> dict[str, Any]:
    """Charges and units by product; content and (product, dst, content) duplicates."""
    state = rt.state
    ledger = state.ledger
    by_product: dict[str, dict[str, int]] = {}
    by_content: Counter[bytes] = Counter()
    by_send: Counter[tuple[int, str, bytes]] = Counter()
    digests = bytes(ledger.digests)
    for i in range(len(ledger)):
        table_no = ledger.product[i]
        name = TABLE_PRODUCTS[table_no]
        entry = by_product.setdefault(name, {"charges": 0, "units": 0})
        entry["charges"] += 1
        entry["units"] += ledger.units[i]
        digest = digests[i * 32 : i * 32 + 32]
        by_content[digest] += 1
        by_send[(table_no, state.tables[table_no].dst_of(ledger.message[i]), digest)] += 1
    dup_content = {k: n for k, n in by_content.items() if n > 1}
    dup_sends = sorted(((n, k) for k, n in by_send.items() if n > 1), reverse=True)
    return {
        "total_charges": len(ledger),
        "total_units": sum(ledger.units),
        "by_product": by_product,
        "duplicate_content": {
            "groups": len(dup_content),
            "charges": sum(dup_content.values()),
            "top": [
                {"content_sha256": k.hex(), "count": n}
                for k, n in Counter(dup_content).most_common(20)
            ],
        },
        "duplicate_sends": {
            "groups": len(dup_sends),
            "charges": sum(n for n, _ in dup_sends),
            "top": [
                {"product": TABLE_PRODUCTS[p], "dst": dst, "content_sha256": d.hex(), "count": n}
                for n, (p, dst, d) in dup_sends[:20]
            ],
        },
    }


def routes(rt: Runtime) -> list[Route]:
    state = rt.state
    started = time.monotonic()

    async def health(request: Request) -> Response:
        return json_ok({"status": "ok", "uptime_s": round(time.monotonic() - started, 3)})

    async def stats(request: Request) -> Response:
        return json_ok(
            {
                "requests": rt.stats.by_route,
                "webhooks": rt.webhooks.stats(),
                "messages": {t.product: len(t) for t in state.tables},
                "charges": len(state.ledger),
                "scheduled": len(state.heap),
                "sends_in_flight": rt.stats.sends_in_flight,
            }
        )

    async def ledger(request: Request) -> Response:
        data = await params(request)
        since = require_int(data, "since", minimum=0) if "since" in data else 0
        total = len(state.ledger)
        # No limit by default: a caller that reads the ledger once must see all of it.
        end = (
            min(total, since + require_int(data, "limit", minimum=1)) if "limit" in data else total
        )
        charges = [charge_record(state, i) for i in range(since, end)]
        return json_ok({"charges": charges, "next": max(end, since), "total": total})

    async def summary(request: Request) -> Response:
        return json_ok(ledger_summary(rt))

    async def get_faults(request: Request) -> Response:
        return json_ok(rt.faults.config.to_json())

    async def put_faults(request: Request) -> Response:
        data = await params(request)
        try:
            rt.faults.set(rt.faults.config.updated(data))
        except KeyError as exc:
            raise bad_request(str(exc.args[0]), "Unknown fault setting") from exc
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        return json_ok(rt.faults.config.to_json())

    async def put_account(request: Request) -> Response:
        data = await params(request)
        for key in ("sms_status_hook_url", "sms_incoming_hook_url"):
            if key in data:
                value = data[key]
                if value is not None and not str(value).startswith(("http://", "https://")):
                    raise bad_request(key, f"{key} must be an http(s) URL or null")
                state.account[key] = value or None
        return json_ok(state.account)

    async def put_balance(request: Request) -> Response:
        data = await params(request)
        product = require_str(data, "product")
        if product not in PRODUCTS:
            raise bad_request("product", f"product must be one of {', '.join(PRODUCTS)}")
        amount = require_int(data, "amount", minimum=0)
        country = None
        if product == PRODUCT_SMS:
            country = require_int(data, "id_country")
            if country not in COUNTRY_NAMES:
                raise bad_request("id_country", "Unknown id_country")
        owner = state.free
        if data.get("id_client"):
            client = state.clients.get(data["id_client"])
            if client is None:
                raise bad_request("id_client", "Unknown client")
            owner = client.balances
        owner.set(product, amount, country)
        return json_ok({"product": product, "id_country": country, "balance": amount})

    async def put_qr_session(request: Request) -> Response:
        status = require_str(await params(request), "status")
        if status not in QR_STATUSES:
            raise bad_request("status", f"status must be one of {', '.join(QR_STATUSES)}")
        state.qr_status = status
        return json_ok({"status": status})

    async def incoming_sms(request: Request) -> Response:
        data = await params(request)
        src = require_str(data, "src_number")
        content = require_str(data, "sms_content")
        dst = str(data.get("dst_number") or state.account["src_numbers"][0]["src_number"])
        provider = str(data.get("src_provider") or "Entel")
        id_sms, queued = state.incoming_sms(src, dst, content, provider)
        return json_ok({"id_sms": id_sms, "queued": queued})

    async def email_event(request: Request) -> Response:
        data = await params(request)
        row = state.tables[EMAIL].index_of(require_str(data, "id"))
        if row is None:
            raise not_found()
        event = require_str(data, "event")
        if event not in ("ABIERTO", "CLICKEADO"):
            raise bad_request("event", "event must be ABIERTO or CLICKEADO")
        state.email_events.setdefault(row, []).append((event, state.clock()))
        return json_ok({"id": data["id"], "event": event})

    async def follow_link(request: Request) -> Response:
        links = state.short_links
        row = links.by_code.get(request.path_params["code"])
        if row is None:
            raise not_found()
        links.clicks[row] += 1
        return RedirectResponse(links.links[row][1], status_code=302)

    async def reset(request: Request) -> Response:
        data = await params(request)
        state.reset()
        if not data.get("keep_faults"):
            rt.faults.set(rt.config.faults)
        rt.stats.by_route.clear()
        return json_ok({"reset": True})

    none = AUTH_NONE
    return [
        endpoint(rt, "GET", f"{PREFIX}/health", health, auth=none),
        endpoint(rt, "GET", f"{PREFIX}/stats", stats, auth=none),
        endpoint(rt, "GET", f"{PREFIX}/ledger", ledger, auth=none),
        endpoint(rt, "GET", f"{PREFIX}/ledger/summary", summary, auth=none),
        endpoint(rt, "GET", f"{PREFIX}/faults", get_faults, auth=none),
        endpoint(rt, "PUT", f"{PREFIX}/faults", put_faults, auth=none),
        endpoint(rt, "PUT", f"{PREFIX}/account", put_account, auth=none),
        endpoint(rt, "PUT", f"{PREFIX}/balance", put_balance, auth=none),
        endpoint(rt, "PUT", f"{PREFIX}/qr_session", put_qr_session, auth=none),
        endpoint(rt, "POST", f"{PREFIX}/incoming_sms", incoming_sms, auth=none),
        endpoint(rt, "POST", f"{PREFIX}/email_event", email_event, auth=none),
        endpoint(rt, "GET", PREFIX + "/s/{code}", follow_link, auth=none),
        endpoint(rt, "POST", f"{PREFIX}/reset", reset, auth=none),
    ]
