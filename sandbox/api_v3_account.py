"""api_v3 account objects: subclients, deliveries, short links, the account.

Subclient balance moves (``add_balance`` / ``remove_balance``) transfer units
between the account's unassigned balance and the subclient: adding more than
is unassigned is a 402, removing more than the subclient has is a 400 on
``amount``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.charging import CLIENT_PRODUCT_NUMBERS, COUNTRY_NAMES, PRODUCT_SMS
from sandbox.directory import DELIVERY_PRODUCTS, Client
from sandbox.errors import ApiError, bad_request, not_found
from sandbox.state import SandboxState
from sandbox.web import Runtime, endpoint, json_ok, params, require_int, require_str

PREFIX = "/api_v3"


def client_balances(client: Client) -> dict[str, Any]:
    b = client.balances
    return {"sms_balance": b.sms_list(), "email_balance": b.email, "whatsapp_balance": b.whatsapp}


def client_object(state: SandboxState, client: Client) -> dict[str, Any]:
    """The single-client shape of the collection; ``balance`` = total SMS units."""
    return {
        "id": client.id,
        "id_account": state.config.api_user,
        "name": client.name,
        "balance": sum(client.balances.sms.values()),
        "balances": client_balances(client),
        "avatar": None,
        "id_unique": client.id_unique,
        "deleted": "F",
        "created_at": state.time.iso(client.created_at),
        "updated_at": state.time.iso(client.updated_at),
    }


def _delivery_body(data: dict[str, Any]) -> dict[str, Any]:
    inner = data.get("delivery")
    if inner is None:
        return data  # tolerate a flat body
    if not isinstance(inner, dict):
        raise bad_request("delivery", "delivery must be an object")
    return inner


def routes(rt: Runtime) -> list[Route]:
    state = rt.state

    def client_or_404(request: Request) -> Client:
        client = state.clients.get(request.path_params["id"])
        if client is None:
            raise not_found()
        return client

    async def list_clients(request: Request) -> Response:
        clients = [
            {
                "name": c.name,
                "id_unique": c.id_unique,
                "created_at": state.time.iso(c.created_at),
                "updated_at": state.time.iso(c.updated_at),
                "balance": client_balances(c),
            }
            for c in state.clients.clients
        ]
        data = {
            "free_sms_balance_by_country": state.free.sms_list(),
            "free_email_balance": state.free.email,
            "free_whatsapp_balance": state.free.whatsapp,
            "clients": clients,
        }
        return json_ok({"data": data})

    async def create_client(request: Request) -> Response:
        name = require_str(await params(request), "name")
        return json_ok(client_object(state, state.clients.create(name, state.clock())))

    async def get_client(request: Request) -> Response:
        return json_ok(client_object(state, client_or_404(request)))

    async def patch_client(request: Request) -> Response:
        client = client_or_404(request)
        client.name = require_str(await params(request), "name")
        client.updated_at = state.clock()
        return json_ok(client_object(state, client))

    async def move_balance(request: Request, *, add: bool) -> Response:
        client = client_or_404(request)
        data = await params(request)
        amount = require_int(data, "amount", minimum=1)
        product = CLIENT_PRODUCT_NUMBERS.get(require_int(data, "product"))
        if product is None:
            raise bad_request("product", "product must be 1 (SMS), 2 (Email) or 3 (WhatsApp)")
        country = None
        if product == PRODUCT_SMS:
            country = require_int(data, "id_country")
            if country not in COUNTRY_NAMES:
                raise bad_request("id_country", "Unknown id_country")
        source, target = (state.free, client.balances) if add else (client.balances, state.free)
        if not source.try_charge(product, amount, country):
            if add:
                extra: dict[str, Any] = {"product": product}
                if country is not None:
                    extra["id_country"] = country
                raise ApiError(402, "Insufficient balance", extra=extra)
            raise bad_request("amount", "The client's balance is lower than amount")
        target.add(product, amount, country)
        client.updated_at = state.clock()
        word = "added" if add else "removed"
        return json_ok({"message": f"Balance {word} successfully"})

    async def add_balance(request: Request) -> Response:
        return await move_balance(request, add=True)

    async def remove_balance(request: Request) -> Response:
        return await move_balance(request, add=False)

    async def create_delivery(request: Request) -> Response:
        body = _delivery_body(await params(request))
        name = require_str(body, "name")
        deliver_at = require_str(body, "deliver_at")
        due = state.time.parse_datetime(deliver_at)
        if due is None:
            raise bad_request("deliver_at", "deliver_at must be YYYY-MM-DD HH:MM:SS")
        id_product = require_int(body, "id_product")
        if id_product not in DELIVERY_PRODUCTS:
            raise bad_request("id_product", "id_product must be 1 (SMS), 2 (WhatsApp) or 3 (Email)")
        delivery = state.deliveries.create(name, deliver_at.strip(), due, id_product)
        state.schedule_delivery(delivery)
        return json_ok(delivery.to_json())

    async def get_delivery(request: Request) -> Response:
        delivery = state.deliveries.get(request.path_params["id"])
        if delivery is None:
            raise not_found()
        return json_ok(delivery.to_json())

    async def patch_delivery(request: Request) -> Response:
        delivery = state.deliveries.get(request.path_params["id"])
        if delivery is None:
            raise not_found()
        body = _delivery_body(await params(request))
        if delivery.executed:
            raise bad_request("delivery", "Delivery already executed")
        if body.get("name"):
            delivery.name = require_str(body, "name")
        if body.get("deliver_at"):
            deliver_at = require_str(body, "deliver_at")
            due = state.time.parse_datetime(deliver_at)
            if due is None:
                raise bad_request("deliver_at", "deliver_at must be YYYY-MM-DD HH:MM:SS")
            delivery.deliver_at, delivery.due = deliver_at.strip(), due
            state.schedule_delivery(delivery)
        return json_ok(delivery.to_json())

    async def create_short_link(request: Request) -> Response:
        link = require_str(await params(request), "link")
        if not link.startswith(("http://", "https://")):
            raise bad_request("link", "link must be an http(s) URL")
        number, code = state.short_links.create(link)
        return json_ok({"short_link": f"cnct.us/{code}", "id": number})

    async def get_short_link(request: Request) -> Response:
        links = state.short_links
        row = links.find(request.path_params["id"])
        if row is None:
            raise not_found()
        return json_ok({"link": links.links[row][1], "clicks": links.clicks[row]})

    async def account(request: Request) -> Response:
        return json_ok(state.account)

    return [
        endpoint(rt, "GET", f"{PREFIX}/clients", list_clients),
        endpoint(rt, "POST", f"{PREFIX}/clients", create_client),
        endpoint(rt, "GET", PREFIX + "/clients/{id}", get_client),
        endpoint(rt, "PATCH", PREFIX + "/clients/{id}", patch_client),
        endpoint(rt, "POST", PREFIX + "/clients/{id}/add_balance", add_balance),
        endpoint(rt, "POST", PREFIX + "/clients/{id}/remove_balance", remove_balance),
        endpoint(rt, "POST", f"{PREFIX}/deliveries", create_delivery),
        endpoint(rt, "GET", PREFIX + "/deliveries/{id}", get_delivery),
        endpoint(rt, "PATCH", PREFIX + "/deliveries/{id}", patch_delivery),
        endpoint(rt, "POST", f"{PREFIX}/short_link", create_short_link),
        endpoint(rt, "GET", PREFIX + "/short_link/{id}", get_short_link),
        endpoint(rt, "GET", f"{PREFIX}/account", account),
    ]
