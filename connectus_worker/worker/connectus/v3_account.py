"""api_v3 account calls: deliveries, subclients, short links and the account."""

from __future__ import annotations

from datetime import datetime

from connectus_worker.worker.connectus.answers import Ack
from connectus_worker.worker.connectus.answers_account import (
    Account,
    Delivery,
    ShortLink,
    Subclient,
    SubclientList,
)
from connectus_worker.worker.connectus.base import (
    SubApi,
    check_enum,
    refuse,
    require_id,
    wall_clock,
)
from connectus_worker.worker.connectus.enums import Country, DeliveryProduct, SubclientProduct


class AccountCalls(SubApi):
    # --- deliveries --------------------------------------------------------
    def create_delivery(
        self, *, name: str, deliver_at: datetime | str, id_product: DeliveryProduct
    ) -> Delivery:
        """``POST /deliveries``: a batch scheduled at ``deliver_at`` (account-local time).

        ``id_product`` uses the deliveries' numbering (1 SMS, 2 WhatsApp, 3 Email).
        """
        product = check_enum("id_product", id_product, DeliveryProduct)
        body = {
            "delivery": {
                "name": name,
                "deliver_at": wall_clock("deliver_at", deliver_at),
                "id_product": int(product),
            }
        }
        return self._t.call("POST", self._url("deliveries"), Delivery.from_body, json_body=body)

    def get_delivery(self, *, id_delivery: str) -> Delivery:
        """``GET /deliveries/:id``; ``status`` becomes ``EJECUTADO`` at ``deliver_at``."""
        url = self._url("deliveries", require_id("id_delivery", id_delivery))
        return self._t.call("GET", url, Delivery.from_body)

    def update_delivery(
        self,
        *,
        id_delivery: str,
        name: str | None = None,
        deliver_at: datetime | str | None = None,
    ) -> Delivery:
        """``PATCH /deliveries/:id``; an executed delivery answers 400 (InvalidRequest)."""
        if name is None and deliver_at is None:
            raise ValueError("update_delivery needs name or deliver_at")
        when = None if deliver_at is None else wall_clock("deliver_at", deliver_at)
        body = {"delivery": {"name": name, "deliver_at": when}}
        url = self._url("deliveries", require_id("id_delivery", id_delivery))
        return self._t.call("PATCH", url, Delivery.from_body, json_body=body)

    # --- subclients --------------------------------------------------------
    def list_clients(self) -> SubclientList:
        """``GET /clients``: unassigned SMS balance per country and every subclient."""
        return self._t.call("GET", self._url("clients"), SubclientList.from_body, listing=True)

    def create_client(self, *, name: str) -> Subclient:
        """``POST /clients``."""
        return self._t.call(
            "POST", self._url("clients"), Subclient.from_body, json_body={"name": name}
        )

    def get_client(self, *, id_client: str) -> Subclient:
        """``GET /clients/:id``; ``id_client`` is the subclient's ``id_unique``."""
        url = self._url("clients", require_id("id_client", id_client))
        return self._t.call("GET", url, Subclient.from_body)

    def update_client(self, *, id_client: str, name: str) -> Subclient:
        """``PATCH /clients/:id``: rename."""
        url = self._url("clients", require_id("id_client", id_client))
        return self._t.call("PATCH", url, Subclient.from_body, json_body={"name": name})

    def add_balance(
        self,
        *,
        id_client: str,
        amount: int,
        product: SubclientProduct,
        id_country: Country | None = None,
    ) -> Ack:
        """``POST /clients/:id/add_balance``: move ``amount`` units to the subclient.

        ``product`` uses the subclients' numbering (1 SMS, 2 Email, 3 WhatsApp);
        SMS balance is per country, so ``id_country`` is required for SMS.
        """
        return self._balance("add_balance", id_client, amount, product, id_country)

    def remove_balance(
        self,
        *,
        id_client: str,
        amount: int,
        product: SubclientProduct,
        id_country: Country | None = None,
    ) -> Ack:
        """``POST /clients/:id/remove_balance``; same rules as :meth:`add_balance`."""
        return self._balance("remove_balance", id_client, amount, product, id_country)

    def _balance(
        self,
        action: str,
        id_client: str,
        amount: int,
        product: SubclientProduct,
        id_country: Country | None,
    ) -> Ack:
        product = check_enum("product", product, SubclientProduct)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise refuse("invalid_amount", f"{action}: amount must be a positive int")
        if id_country is not None:
            id_country = check_enum("id_country", id_country, Country)
        elif product is SubclientProduct.SMS:
            raise refuse("id_country_required", f"{action}: SMS balance needs id_country")
        body = {
            "amount": amount,
            "product": int(product),
            "id_country": None if id_country is None else int(id_country),
        }
        url = self._url("clients", require_id("id_client", id_client), action)
        return self._t.call("POST", url, Ack.from_body, json_body=body)

    # --- short links and account ------------------------------------------
    def create_short_link(self, *, link: str) -> ShortLink:
        """``POST /short_link`` (the option must be enabled for the account)."""
        return self._t.call(
            "POST", self._url("short_link"), ShortLink.from_body, json_body={"link": link}
        )

    def get_short_link(self, *, id_short_link: str) -> ShortLink:
        """``GET /short_link/:id``: the target ``link`` and its ``clicks``."""
        url = self._url("short_link", require_id("id_short_link", id_short_link))
        return self._t.call("GET", url, ShortLink.from_body)

    def account(self) -> Account:
        """``GET /account``, including the SMS status and incoming webhook URLs."""
        return self._t.call("GET", self._url("account"), Account.from_body)
