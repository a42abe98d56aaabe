"""The answers of the api_v3 account calls: deliveries, subclients, short links, account.

Read like :mod:`worker.connectus.answers`; the documents show few of these
answers, so most fields are optional.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AliasPath, Field, model_validator
from pydantic.dataclasses import dataclass

from connectus_worker.worker.connectus.answers import (
    CONFIG,
    LISTED,
    Answer,
    Int,
    OptInt,
    OptText,
    Text,
    aliases,
)


@dataclass(frozen=True, config=CONFIG)
class Delivery(Answer):
    """A named, schedulable batch (``/deliveries``); ``deliver_at`` is account-local."""

    WRAPPER = "delivery"  # tolerated: {"delivery": {...}}, as the request is sent

    id: Annotated[Text, aliases("id", "id_delivery")]
    name: OptText = None
    deliver_at: OptText = None
    id_product: OptInt = None
    status: OptText = None


@dataclass(frozen=True, config=CONFIG)
class CountryBalance(Answer):
    id_country: Int
    balance: Int
    country_name: OptText = None


def _in_balance(key: str) -> Any:
    return Field(validation_alias=AliasPath("balance", key))


@dataclass(frozen=True, config=CONFIG)
class Subclient(Answer):
    """A subclient; ``id_unique`` is what the ``/clients/:id`` paths take.

    ``balance``: the one figure of ``GET /clients/:id``. ``sms_balances``,
    ``email_balance`` and ``whatsapp_balance``: the ``balance`` object of a
    ``GET /clients`` entry (SMS balance is per country); empty and None where
    the answer has no such object.
    """

    WRAPPER = "data"

    id: OptInt = None
    id_unique: OptText = None
    name: OptText = None
    balance: OptInt = None
    sms_balances: Annotated[tuple[CountryBalance, ...], LISTED, _in_balance("sms_balance")] = ()
    email_balance: Annotated[OptInt, _in_balance("email_balance")] = None
    whatsapp_balance: Annotated[OptInt, _in_balance("whatsapp_balance")] = None

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.id is None and self.id_unique is None:
            raise ValueError("client has neither id nor id_unique")
        return self


@dataclass(frozen=True, config=CONFIG)
class SubclientList(Answer):
    """``GET /clients``: the unassigned balances (SMS per country, e-mail, WhatsApp;
    None where the answer lacks the field), and the subclients."""

    WRAPPER = "data"
    RAW_OUTER = True

    free_sms_balance_by_country: Annotated[tuple[CountryBalance, ...], LISTED] = ()
    clients: Annotated[tuple[Subclient, ...], LISTED] = ()
    free_email_balance: OptInt = None
    free_whatsapp_balance: OptInt = None

    def client(self, id_unique: str) -> Subclient | None:
        """The subclient of that ``id_unique``, if listed."""
        return next((c for c in self.clients if c.id_unique == id_unique), None)


@dataclass(frozen=True, config=CONFIG)
class ShortLink(Answer):
    """``POST /short_link`` gives ``short_link``/``id``; ``GET`` gives ``link``/``clicks``."""

    id: OptText = None
    short_link: OptText = None
    link: OptText = None
    clicks: OptInt = None


@dataclass(frozen=True, config=CONFIG)
class Account(Answer):
    """``GET /account``, including the two webhook URLs."""

    id_account: OptText = None
    name: OptText = None
    email: OptText = None
    sms_status_hook_url: OptText = None
    sms_incoming_hook_url: OptText = None
