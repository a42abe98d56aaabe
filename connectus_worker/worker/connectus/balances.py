"""Which Connectus balance a send draws on, and how much is left (campaign preflight).

Which figure of which call each case reads: docs/campaigns.md, the preflight
table. A lookup caches its answers (a preflight asks once per country and lists
the subclients once) and reads a :class:`BalanceSource`: the Connectus client,
or the workers' snapshot in Redis for the service (:mod:`worker.balance_snapshot`).
"""

from __future__ import annotations

from typing import Protocol

from connectus_worker.campaign.model import Balance, Transport
from connectus_worker.domain.models import KINDS, Kind
from connectus_worker.worker.connectus.answers_account import (
    CountryBalance,
    Subclient,
    SubclientList,
)


class _V3Balances(Protocol):
    def list_clients(self) -> SubclientList: ...
    def email_balance(self) -> int: ...
    def get_client(self, *, id_client: str) -> Subclient: ...


class _V1Balances(Protocol):
    def check_balance(self) -> int: ...
    def check_email_balance(self) -> int: ...


class BalanceSource(Protocol):
    """What the lookup reads: a :class:`~worker.connectus.client.ConnectusClient`
    has this shape."""

    @property
    def v3(self) -> _V3Balances: ...
    @property
    def v1(self) -> _V1Balances: ...


#: How the preflight names each product's balance (the products of :data:`KINDS`).
_PRODUCT_NAMES = {"sms": "SMS", "email": "e-mail", "whatsapp": "WhatsApp"}


class BalanceLookup:
    """Callable ``(kind, id_client, country id, transport) -> Balance``.

    A kind draws on its product's balance (``KINDS[kind].product``).
    """

    def __init__(self, client: BalanceSource) -> None:
        self.client = client
        self._cache: dict[tuple[str, str | None, int | None, Transport], Balance] = {}
        self._clients: SubclientList | None = None

    def __call__(
        self,
        kind: Kind,
        id_client: str | None,
        country: int | None,
        transport: Transport = Transport.V3,
    ) -> Balance:
        product = KINDS[kind].product
        key = (product, id_client, country if product == "sms" else None, transport)
        if key not in self._cache:
            self._cache[key] = self._lookup(product, id_client, country, transport)
        return self._cache[key]

    def _lookup(
        self, product: str, id_client: str | None, country: int | None, transport: Transport
    ) -> Balance:
        if transport is Transport.V1_BULK:
            return self._v1(product)
        if id_client:
            return self._subclient(product, id_client, country)
        if product == "sms":
            if country is None:
                return Balance("no Connectus country for these numbers", 0)
            by_country = self._listing().free_sms_balance_by_country
            return _for_country(by_country, country, "account's unassigned SMS balance")
        if product == "email":
            account = self.client.v3.email_balance()
            free = self._listing().free_email_balance
            if free is not None and free < account:
                return Balance("account's unassigned e-mail balance (free_email_balance)", free)
            return Balance("account's e-mail balance", account)
        if product == "whatsapp":
            return Balance(
                "account's unassigned WhatsApp balance (free_whatsapp_balance)",
                self._listing().free_whatsapp_balance,
            )
        return Balance(f"{product}: Connectus documents no balance call", None)

    def _v1(self, product: str) -> Balance:
        v1 = self.client.v1
        if product == "sms":
            return Balance("account's v1 SMS balance (check_balance)", v1.check_balance())
        if product == "email":
            what = "account's v1 e-mail balance (check_email_balance)"
            return Balance(what, v1.check_email_balance())
        return Balance(f"{product}: api_v1 documents no balance call", None)

    def _listing(self) -> SubclientList:
        if self._clients is None:
            self._clients = self.client.v3.list_clients()
        return self._clients

    def _subclient(self, product: str, id_client: str, country: int | None) -> Balance:
        entry = self._listing().client(id_client)
        if product == "sms" and entry is not None and entry.sms_balances:
            if country is None:
                return Balance("no Connectus country for these numbers", 0)
            return _for_country(entry.sms_balances, country, f"subclient {id_client}'s SMS balance")
        if entry is not None:
            listed = {"email": entry.email_balance, "whatsapp": entry.whatsapp_balance}.get(product)
            if listed is not None:
                what = f"subclient {id_client}'s {_PRODUCT_NAMES[product]} balance"
                return Balance(what, listed)
        sub = self.client.v3.get_client(id_client=id_client)
        return Balance(f"subclient {id_client}'s balance", sub.balance)


def _for_country(balances: tuple[CountryBalance, ...], country: int, what: str) -> Balance:
    for entry in balances:
        if entry.id_country == country:
            name = entry.country_name or f"country {country}"
            return Balance(f"{what} for {name}", entry.balance)
    return Balance(f"{what} for country {country}", 0)
