"""Subclients, deliveries and short links: the account's named objects.

Each book is a list plus one lookup dict; ids of deliveries are 32 hex chars
like the documented ones, subclient ids are 8-character ``id_unique`` strings,
short links are numbered from 1.
"""

from __future__ import annotations

import os
import string
from array import array
from typing import Any

from sandbox.charging import Balances
from sandbox.errors import bad_request

_ALNUM = string.ascii_lowercase + string.digits
_B62 = string.ascii_letters + string.digits

# Deliveries number products 1 SMS, 2 WhatsApp, 3 Email (their own description).
DELIVERY_PRODUCTS = {1: "sms", 2: "whatsapp", 3: "email"}


def _random_token(alphabet: str, length: int) -> str:
    raw = os.urandom(length)
    return "".join(alphabet[b % len(alphabet)] for b in raw)


class Client:
    """A subclient: an accounting bucket with its own balances."""

    __slots__ = ("balances", "created_at", "id", "id_unique", "name", "updated_at")

    def __init__(self, number: int, id_unique: str, name: str, now: float) -> None:
        self.id = number
        self.id_unique = id_unique
        self.name = name
        self.balances = Balances()
        self.created_at = now
        self.updated_at = now


class ClientBook:
    __slots__ = ("by_unique", "clients")

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.by_unique: dict[str, Client] = {}

    def create(self, name: str, now: float) -> Client:
        id_unique = _random_token(_ALNUM, 8)
        while id_unique in self.by_unique:
            id_unique = _random_token(_ALNUM, 8)
        client = Client(len(self.clients) + 1, id_unique, name, now)
        self.clients.append(client)
        self.by_unique[id_unique] = client
        return client

    def get(self, id_unique: object) -> Client | None:
        return self.by_unique.get(str(id_unique)) if id_unique not in (None, "") else None

    def resolve(self, id_client: object) -> Client | None:
        """The client named in a send body; ``None`` for "unassigned"; 400 if unknown."""
        if id_client in (None, ""):
            return None
        client = self.by_unique.get(str(id_client))
        if client is None:
            raise bad_request("id_client", "Unknown client")
        return client


class Delivery:
    """A named batch; its messages stay PROGRAMADO until ``due`` (epoch s)."""

    __slots__ = ("deliver_at", "due", "executed", "id", "id_product", "index", "members", "name")

    def __init__(self, index: int, delivery_id: str, name: str, deliver_at: str, due: float,
                 id_product: int) -> None:  # fmt: skip
        self.index = index
        self.id = delivery_id
        self.name = name
        self.deliver_at = deliver_at
        self.due = due
        self.id_product = id_product
        self.executed = False
        # (table << 40 | row) of every member message, in arrival order.
        self.members = array("q")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "deliver_at": self.deliver_at,
            "id_product": self.id_product,
            "status": "EJECUTADO" if self.executed else "PROGRAMADO",
            "messages": len(self.members),
        }


class DeliveryBook:
    __slots__ = ("by_id", "deliveries")

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.by_id: dict[str, Delivery] = {}

    def create(self, name: str, deliver_at: str, due: float, id_product: int) -> Delivery:
        delivery_id = os.urandom(16).hex()
        delivery = Delivery(len(self.deliveries), delivery_id, name, deliver_at, due, id_product)
        self.deliveries.append(delivery)
        self.by_id[delivery_id] = delivery
        return delivery

    def get(self, delivery_id: object) -> Delivery | None:
        return self.by_id.get(delivery_id) if isinstance(delivery_id, str) else None


class ShortLinks:
    """Short links: ``id`` = position + 1, code = 6 base-62 characters."""

    __slots__ = ("by_code", "clicks", "links")

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []  # (code, target)
        self.clicks = array("q")
        self.by_code: dict[str, int] = {}

    def create(self, link: str) -> tuple[int, str]:
        code = _random_token(_B62, 6)
        while code in self.by_code:
            code = _random_token(_B62, 6)
        self.links.append((code, link))
        self.clicks.append(0)
        self.by_code[code] = len(self.links) - 1
        return len(self.links), code

    def find(self, key: str) -> int | None:
        """Row of a link given its numeric id or its code."""
        if key.isdigit() and 1 <= int(key) <= len(self.links):
            return int(key) - 1
        return self.by_code.get(key.rsplit("/", 1)[-1])
