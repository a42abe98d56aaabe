"""Numbered codes of the Connectus API, as enums so callers never pass a bare number.

The collection numbers products twice, differently: deliveries say 1 SMS,
2 WhatsApp, 3 Email; subclient balances say 1 SMS, 2 Email, 3 WhatsApp. Each
call takes the enum of its own description (docs/connectus-api.md), and
checks the enum *type* at run time, because an ``IntEnum`` of the wrong kind
would otherwise be accepted silently (``SubclientProduct.EMAIL == 2``).
"""

from __future__ import annotations

import enum


class DeliveryProduct(enum.IntEnum):
    """``id_product`` of ``POST /api_v3/deliveries``."""

    SMS = 1
    WHATSAPP = 2
    EMAIL = 3


class SubclientProduct(enum.IntEnum):
    """``product`` of ``POST /api_v3/clients/:id/add_balance`` and ``remove_balance``."""

    SMS = 1
    EMAIL = 2
    WHATSAPP = 3


class Country(enum.IntEnum):
    """``id_country``: SMS balance is kept per destination country."""

    CHILE = 1
    MEXICO = 2
    PERU = 3
    ECUADOR = 4
    ESTADOS_UNIDOS = 5
    COLOMBIA = 6
    ARGENTINA = 7
    BRASIL = 8
    COSTA_RICA = 10
    URUGUAY = 12
    PARAGUAY = 13
    BOLIVIA = 14
    GUATEMALA = 15
