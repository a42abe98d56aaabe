"""``client.v3``: the current API at ``CONNECTUS_BASE_URL`` + ``/api_v3`` (JSON bodies).

Paths and bodies follow docs/connectus-api.md. Sends return :class:`SendResult`
or raise; lookups return records.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from connectus_worker.domain.countries import connectus_country
from connectus_worker.worker.connectus.answers import (
    Ack,
    Balance,
    EmailStatus,
    MessageStatus,
    SendResult,
    SmsRecord,
    SmsRecords,
    WhatsAppMessage,
    WhatsAppMessages,
)
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
    day,
    refuse,
    require_id,
    wall_clock,
)
from connectus_worker.worker.connectus.enums import Country, DeliveryProduct, SubclientProduct


class V3Api(SubApi):
    """SMS, e-mail, WhatsApp, deliveries, subclients, short links, account."""

    PREFIX = "/api_v3"

    # --- SMS ---------------------------------------------------------------
    def send_sms(
        self,
        *,
        dst_number: str,
        sms_content: str,
        src_number: str | None = None,
        id_delivery: str | None = None,
        id_client: str | None = None,
        id_country: Country | None = None,
    ) -> SendResult:
        """``POST /sms/send_individual``; charged ceil(len/160) SMS of the destination's country.

        With ``id_client``, ``id_country`` is sent too (the Subclient section: "the
        SMS API must include the destination country"); by default the country of
        ``dst_number``'s calling code. A number of no Connectus country is refused
        before sending (``InvalidRequest``, ``id_country_unknown``).
        A 2xx answer with a non-``ESME_ROK`` status raises its SMPP class.
        """
        if id_country is not None:
            id_country = check_enum("id_country", id_country, Country)
        elif id_client is not None:
            found = connectus_country(dst_number)
            if found is None:
                raise refuse("id_country_unknown", "id_client: a subclient's SMS needs the "
                             "destination's country, and dst_number's calling code is none of "
                             "Connectus's countries")  # fmt: skip
            id_country = Country(found)
        body = {
            "dst_number": dst_number,
            "sms_content": sms_content,
            "src_number": src_number,
            "id_delivery": id_delivery,
            "id_client": id_client,
            "id_country": None if id_country is None else int(id_country),
        }
        return self._send("sms/send_individual", body)

    def send_otp(
        self,
        *,
        dst_number: str,
        sms_content: str,
        src_number: str | None = None,
        save_content: str | None = "hash",
    ) -> SendResult:
        """``POST /sms/send_otp`` (dearer than a plain SMS).

        ``save_content="hash"`` (the default) makes Connectus store only the
        content's hash: an OTP should not sit readable in their database.
        Pass ``None`` to omit the field.
        """
        body = {
            "dst_number": dst_number,
            "sms_content": sms_content,
            "src_number": src_number,
            "save_content": save_content,
        }
        return self._send("sms/send_otp", body)

    def get_sms(self, *, id_sms: str) -> SmsRecord:
        """``GET /sms/:id``: ``ESME_ROK`` while queued, then ``DELIVRD``/``UNDELIV``."""
        record = self._call("GET", SmsRecord.from_body, "sms", require_id("id_sms", id_sms))
        # The collection's answer is only {"status"}: the id asked for is the id.
        return record if record.id else replace(record, id=id_sms)

    def sms_delivery_info(self, *, id_delivery: str) -> SmsRecords:
        """``GET /sms/delivery_info?delivery_id=``: every SMS of one delivery."""
        params = {"delivery_id": require_id("id_delivery", id_delivery)}
        return self._call(
            "GET", SmsRecords.from_body, "sms/delivery_info", params=params, listing=True
        )

    def sms_date_report(
        self, *, begin_date: date | str, end_date: date | str
    ) -> tuple[SmsRecord, ...]:
        """``GET /sms/date_report``: SMS sent between two dates, both inclusive."""
        params = {
            "begin_date": day("begin_date", begin_date),
            "end_date": day("end_date", end_date),
        }
        answer = self._call(
            "GET", SmsRecords.from_body, "sms/date_report", params=params, listing=True
        )
        return answer.messages

    # --- e-mail ------------------------------------------------------------
    def send_email(
        self,
        *,
        dst_email: str,
        src_email: str,
        subject: str,
        email_content: str,
        id_client: str | None = None,
        id_delivery: str | None = None,
    ) -> SendResult:
        """``POST /email/send_single``; ``email_content`` is HTML; ``src_email`` must be
        validated on the platform."""
        body = {
            "dst_email": dst_email,
            "src_email": src_email,
            "subject": subject,
            "email_content": email_content,
            "id_client": id_client,
            "id_delivery": id_delivery,
        }
        return self._send("email/send_single", body)

    def send_otp_email(
        self, *, dst_email: str, src_email: str, subject: str, email_content: str
    ) -> SendResult:
        body = {
            "dst_email": dst_email,
            "src_email": src_email,
            "subject": subject,
            "email_content": email_content,
        }
        return self._send("email/send_otp_email", body)

    def get_email(self, *, id_email: str) -> EmailStatus:
        """``GET /email/:id``: status and ABIERTO/CLICKEADO events."""
        status = self._call("GET", EmailStatus.from_body, "email", require_id("id_email", id_email))
        return status if status.id else replace(status, id=id_email)

    def email_balance(self) -> int:
        """``GET /email/balance``: e-mails left."""
        return self._call("GET", Balance.from_body, "email/balance").balance

    # --- WhatsApp ----------------------------------------------------------
    def send_whatsapp(
        self,
        *,
        src_number: str,
        dst_number: str,
        whatsapp_content: str,
        id_client: str | None = None,
        id_delivery: str | None = None,
    ) -> SendResult:
        """``POST /whatsapp/send_message``; the provider id is ``message_id``."""
        body = {
            "src_number": src_number,
            "dst_number": dst_number,
            "whatsapp_content": whatsapp_content,
            "id_client": id_client,
            "id_delivery": id_delivery,
        }
        return self._send("whatsapp/send_message", body)

    def whatsapp_status(self, *, message_id: str) -> MessageStatus:
        params = {"message_id": require_id("message_id", message_id)}
        return self._call("GET", MessageStatus.from_body, "whatsapp/status", params=params)

    def whatsapp_messages(self, *, src_number: str, dst_number: str) -> tuple[WhatsAppMessage, ...]:
        """``GET /whatsapp/messages``: the conversation between two numbers."""
        params = {"src_number": src_number, "dst_number": dst_number}
        return self._call(
            "GET", WhatsAppMessages.from_body, "whatsapp/messages", params=params
        ).messages

    # --- deliveries --------------------------------------------------------
    def create_delivery(
        self, *, name: str, deliver_at: datetime | str, id_product: DeliveryProduct
    ) -> Delivery:
        """``POST /deliveries``: a batch scheduled at ``deliver_at`` (account-local time).

        ``id_product`` uses the deliveries' numbering (1 SMS, 2 WhatsApp, 3 Email).
        """
        product = check_enum("id_product", id_product, DeliveryProduct)
        when = wall_clock("deliver_at", deliver_at)
        body = {"delivery": {"name": name, "deliver_at": when, "id_product": int(product)}}
        return self._call("POST", Delivery.from_body, "deliveries", json_body=body)

    def get_delivery(self, *, id_delivery: str) -> Delivery:
        """``GET /deliveries/:id``; ``status`` becomes ``EJECUTADO`` at ``deliver_at``."""
        return self._call(
            "GET", Delivery.from_body, "deliveries", require_id("id_delivery", id_delivery)
        )

    def update_delivery(
        self, *, id_delivery: str, name: str | None = None, deliver_at: datetime | str | None = None
    ) -> Delivery:
        """``PATCH /deliveries/:id``; an executed delivery answers 400 (InvalidRequest)."""
        if name is None and deliver_at is None:
            raise ValueError("update_delivery needs name or deliver_at")
        when = None if deliver_at is None else wall_clock("deliver_at", deliver_at)
        body = {"delivery": {"name": name, "deliver_at": when}}
        id_delivery = require_id("id_delivery", id_delivery)
        return self._call("PATCH", Delivery.from_body, "deliveries", id_delivery, json_body=body)

    # --- subclients --------------------------------------------------------
    def list_clients(self) -> SubclientList:
        """``GET /clients``: unassigned SMS balance per country and every subclient."""
        return self._call("GET", SubclientList.from_body, "clients", listing=True)

    def create_client(self, *, name: str) -> Subclient:
        return self._call("POST", Subclient.from_body, "clients", json_body={"name": name})

    def get_client(self, *, id_client: str) -> Subclient:
        """``GET /clients/:id``; ``id_client`` is the subclient's ``id_unique``."""
        return self._call("GET", Subclient.from_body, "clients", require_id("id_client", id_client))

    def update_client(self, *, id_client: str, name: str) -> Subclient:
        id_client = require_id("id_client", id_client)
        return self._call(
            "PATCH", Subclient.from_body, "clients", id_client, json_body={"name": name}
        )

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
        return self._move_balance("add_balance", id_client, amount, product, id_country)

    def remove_balance(
        self,
        *,
        id_client: str,
        amount: int,
        product: SubclientProduct,
        id_country: Country | None = None,
    ) -> Ack:
        """``POST /clients/:id/remove_balance``; same rules as :meth:`add_balance`."""
        return self._move_balance("remove_balance", id_client, amount, product, id_country)

    def _move_balance(
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
        id_client = require_id("id_client", id_client)
        return self._call("POST", Ack.from_body, "clients", id_client, action, json_body=body)

    # --- short links and account ------------------------------------------
    def create_short_link(self, *, link: str) -> ShortLink:
        """``POST /short_link`` (the option must be enabled for the account)."""
        return self._call("POST", ShortLink.from_body, "short_link", json_body={"link": link})

    def get_short_link(self, *, id_short_link: str) -> ShortLink:
        """``GET /short_link/:id``: the target ``link`` and its ``clicks``."""
        id_short_link = require_id("id_short_link", id_short_link)
        return self._call("GET", ShortLink.from_body, "short_link", id_short_link)

    def account(self) -> Account:
        return self._call("GET", Account.from_body, "account")
