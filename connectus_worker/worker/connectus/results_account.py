"""Typed results of the api_v3 account calls: subclients, short links, account.

Parsed like :mod:`worker.connectus.results`: unknown fields ignored, ``raw``
kept out of ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectus_worker.worker.connectus.parsing import (
    ParseError,
    as_mapping,
    objects,
    opt_bool,
    opt_int,
    opt_str,
    req_int,
)

Raw = Mapping[str, Any]


@dataclass(frozen=True)
class CountryBalance:
    id_country: int
    country_name: str | None
    balance: int


@dataclass(frozen=True)
class Subclient:
    """A subclient; ``id_unique`` is what the ``/clients/:id`` paths take.

    ``balance``: the one figure of ``GET /clients/:id``. ``sms_balances``,
    ``email_balance`` and ``whatsapp_balance``: the ``balance`` object of a
    ``GET /clients`` entry (SMS balance is per country); empty and None where
    the answer has no such object.
    """

    id: int | None
    id_unique: str | None
    name: str | None
    balance: int | None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)
    sms_balances: tuple[CountryBalance, ...] = ()
    email_balance: int | None = None
    whatsapp_balance: int | None = None

    @classmethod
    def from_body(cls, body: Any) -> Subclient:
        data = as_mapping(body, "client")
        if isinstance(data.get("data"), Mapping):
            data = data["data"]
        if opt_str(data, "id", "id_unique") is None:
            raise ParseError("client has neither id nor id_unique")
        balances = data.get("balance")
        listed = balances if isinstance(balances, Mapping) else {}
        return cls(
            id=opt_int(data, "id"),
            id_unique=opt_str(data, "id_unique"),
            name=opt_str(data, "name"),
            balance=opt_int(data, "balance"),
            raw=data,
            sms_balances=_country_balances(listed, "sms_balance"),
            email_balance=opt_int(listed, "email_balance"),
            whatsapp_balance=opt_int(listed, "whatsapp_balance"),
        )


@dataclass(frozen=True)
class SubclientList:
    """``GET /clients``: the unassigned balances (SMS per country, e-mail, WhatsApp;
    None where the answer lacks the field), and the subclients."""

    free_sms_balance_by_country: tuple[CountryBalance, ...]
    clients: tuple[Subclient, ...]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)
    free_email_balance: int | None = None
    free_whatsapp_balance: int | None = None

    @classmethod
    def from_body(cls, body: Any) -> SubclientList:
        top = as_mapping(body)
        data = top["data"] if isinstance(top.get("data"), Mapping) else top
        balances = _country_balances(data, "free_sms_balance_by_country")
        clients = tuple(Subclient.from_body(c) for c in objects(data, "clients"))
        return cls(
            balances,
            clients,
            top,
            free_email_balance=opt_int(data, "free_email_balance"),
            free_whatsapp_balance=opt_int(data, "free_whatsapp_balance"),
        )

    def client(self, id_unique: str) -> Subclient | None:
        """The subclient of that ``id_unique``, if listed."""
        return next((c for c in self.clients if c.id_unique == id_unique), None)


def _country_balances(data: Mapping[str, Any], key: str) -> tuple[CountryBalance, ...]:
    return tuple(
        CountryBalance(
            req_int(item, "id_country"), opt_str(item, "country_name"), req_int(item, "balance")
        )
        for item in objects(data, key)
    )


@dataclass(frozen=True)
class Ack:
    """A call answering only "done" (balance moves, QR group calls)."""

    success: bool
    message: str | None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> Ack:
        data = as_mapping(body)
        success = opt_bool(data, "success")
        # No "success" field (balance moves answer {"message": ...}) means done:
        # a refusal would have been a non-2xx or a success=false, mapped earlier.
        return cls(True if success is None else success, opt_str(data, "message"), data)


@dataclass(frozen=True)
class ShortLink:
    """``POST /short_link`` gives ``short_link``/``id``; ``GET`` gives ``link``/``clicks``."""

    id: str | None
    short_link: str | None
    link: str | None
    clicks: int | None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> ShortLink:
        data = as_mapping(body)
        return cls(
            opt_str(data, "id"),
            opt_str(data, "short_link"),
            opt_str(data, "link"),
            opt_int(data, "clicks"),
            data,
        )


@dataclass(frozen=True)
class Account:
    """``GET /account``, including the two webhook URLs."""

    id_account: str | None
    name: str | None
    email: str | None
    sms_status_hook_url: str | None
    sms_incoming_hook_url: str | None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> Account:
        data = as_mapping(body)
        return cls(
            opt_str(data, "id_account"),
            opt_str(data, "name"),
            opt_str(data, "email"),
            opt_str(data, "sms_status_hook_url"),
            opt_str(data, "sms_incoming_hook_url"),
            data,
        )
