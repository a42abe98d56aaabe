"""Which Connectus balance a send draws on, and how much is left (for campaign preflight).

- SMS without a subclient: the account's unassigned balance *for the
  destination's country* (``GET /clients`` → ``free_sms_balance_by_country``);
  SMS balance is per country, so a campaign to two countries checks two.
- SMS or e-mail charged to a subclient (``id_client``): that subclient's
  balance. For SMS, its balance for the destination's country, from its
  ``GET /clients`` entry (``balance.sms_balance``); for e-mail, that entry's
  ``email_balance``. ``GET /clients/:id`` answers one figure (``balance``, the
  documents don't say of what): it is used only when the subclient is not listed
  or its entry has no balance object.
- E-mail: ``GET /email/balance``.
- WhatsApp: the documents have no balance call; ``available`` is None.

Answers are cached per lookup object: a preflight asks once per country, and
lists the subclients (``GET /clients``) once.
"""

from __future__ import annotations

from core.campaign.model import Balance
from core.models import Kind
from worker.connectus.client import ConnectusClient
from worker.connectus.results_account import CountryBalance, SubclientList


class BalanceLookup:
    """Callable ``(kind, id_client, country id) -> Balance``."""

    def __init__(self, client: ConnectusClient) -> None:
        self.client = client
        self._cache: dict[tuple[Kind, str | None, int | None], Balance] = {}
        self._clients: SubclientList | None = None

    def __call__(self, kind: Kind, id_client: str | None, country: int | None) -> Balance:
        key = (kind, id_client, country)
        if key not in self._cache:
            self._cache[key] = self._lookup(kind, id_client, country)
        return self._cache[key]

    def _lookup(self, kind: Kind, id_client: str | None, country: int | None) -> Balance:
        if id_client and kind in (Kind.SMS, Kind.EMAIL):
            return self._subclient(kind, id_client, country)
        if kind is Kind.SMS:
            if country is None:
                return Balance("no Connectus country for these numbers", 0)
            free = self._listing().free_sms_balance_by_country
            return _for_country(free, country, "account's unassigned SMS balance")
        if kind is Kind.EMAIL:
            return Balance("account's e-mail balance", self.client.v3.email_balance())
        return Balance(f"{kind.value}: Connectus documents no balance call", None)

    def _listing(self) -> SubclientList:
        if self._clients is None:
            self._clients = self.client.v3.list_clients()
        return self._clients

    def _subclient(self, kind: Kind, id_client: str, country: int | None) -> Balance:
        entry = self._listing().client(id_client)
        if kind is Kind.SMS and entry is not None and entry.sms_balances:
            if country is None:
                return Balance("no Connectus country for these numbers", 0)
            return _for_country(entry.sms_balances, country, f"subclient {id_client}'s SMS balance")
        if kind is Kind.EMAIL and entry is not None and entry.email_balance is not None:
            return Balance(f"subclient {id_client}'s e-mail balance", entry.email_balance)
        sub = self.client.v3.get_client(id_client=id_client)
        return Balance(f"subclient {id_client}'s balance", sub.balance)


def _for_country(balances: tuple[CountryBalance, ...], country: int, what: str) -> Balance:
    for entry in balances:
        if entry.id_country == country:
            return Balance(
                f"{what} for {entry.country_name or f'country {country}'}", entry.balance
            )
    return Balance(f"{what} for country {country}", 0)
