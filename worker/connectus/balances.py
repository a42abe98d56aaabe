"""Which Connectus balance a send draws on, and how much is left (for campaign preflight).

- SMS without a subclient: the account's unassigned balance *for the
  destination's country* (``GET /clients`` → ``free_sms_balance_by_country``);
  SMS balance is per country, so a campaign to two countries checks two.
- SMS or e-mail charged to a subclient (``id_client``): that subclient's
  balance (``GET /clients/:id``).
- E-mail: ``GET /email/balance``.
- WhatsApp: the documents have no balance call; ``available`` is None.

Answers are cached per lookup object: a preflight asks once per country.
"""

from __future__ import annotations

from core.campaign.model import Balance
from core.models import Kind
from worker.connectus.client import ConnectusClient


class BalanceLookup:
    """Callable ``(kind, id_client, country id) -> Balance``."""

    def __init__(self, client: ConnectusClient) -> None:
        self.client = client
        self._cache: dict[tuple[Kind, str | None, int | None], Balance] = {}

    def __call__(self, kind: Kind, id_client: str | None, country: int | None) -> Balance:
        key = (kind, id_client, country)
        if key not in self._cache:
            self._cache[key] = self._lookup(kind, id_client, country)
        return self._cache[key]

    def _lookup(self, kind: Kind, id_client: str | None, country: int | None) -> Balance:
        if id_client and kind in (Kind.SMS, Kind.EMAIL):
            sub = self.client.v3.get_client(id_client=id_client)
            return Balance(f"subclient {id_client}'s balance", sub.balance)
        if kind is Kind.SMS:
            if country is None:
                return Balance("no Connectus country for these numbers", 0)
            listing = self.client.v3.list_clients()
            for entry in listing.free_sms_balance_by_country:
                if entry.id_country == country:
                    name = entry.country_name or f"country {country}"
                    return Balance(f"account's unassigned SMS balance for {name}",
                                         entry.balance)  # fmt: skip
            return Balance(f"account's unassigned SMS balance for country {country}", 0)
        if kind is Kind.EMAIL:
            return Balance("account's e-mail balance", self.client.v3.email_balance())
        return Balance(f"{kind.value}: Connectus documents no balance call", None)
