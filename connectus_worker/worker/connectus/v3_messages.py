"""api_v3 message calls: SMS, e-mail and WhatsApp (JSON bodies, under ``/api_v3``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from connectus_worker.worker.connectus.answers import (
    Balance,
    DeliveryInfo,
    EmailStatus,
    SendResult,
    SmsRecord,
    SmsRecords,
    WhatsAppMessage,
    WhatsAppMessages,
    WhatsAppStatus,
)
from connectus_worker.worker.connectus.base import SubApi, check_enum, day, refuse, require_id
from connectus_worker.worker.connectus.enums import Country, country_of_number


def _balance(body: object) -> int:
    return Balance.from_body(body).balance


class MessageCalls(SubApi):
    """Sends return :class:`SendResult` or raise; lookups return records."""

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
            id_country = country_of_number(dst_number)
            if id_country is None:
                raise refuse("id_country_unknown", "id_client: a subclient's SMS needs the "
                             "destination's country, and dst_number's calling code is none of "
                             "Connectus's countries")  # fmt: skip
        body = {
            "dst_number": dst_number,
            "sms_content": sms_content,
            "src_number": src_number,
            "id_delivery": id_delivery,
            "id_client": id_client,
            "id_country": None if id_country is None else int(id_country),
        }
        url = self._url("sms", "send_individual")
        return self._t.call("POST", url, SendResult.from_body, json_body=body, send=True)

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
        url = self._url("sms", "send_otp")
        return self._t.call("POST", url, SendResult.from_body, json_body=body, send=True)

    def get_sms(self, *, id_sms: str) -> SmsRecord:
        """``GET /sms/:id``: ``ESME_ROK`` while queued, then ``DELIVRD``/``UNDELIV``."""
        url = self._url("sms", require_id("id_sms", id_sms))
        record = self._t.call("GET", url, SmsRecord.from_body)
        # The collection's answer is only {"status"}: the id asked for is the id.
        return record if record.id else replace(record, id=id_sms)

    def sms_delivery_info(self, *, id_delivery: str) -> DeliveryInfo:
        """``GET /sms/delivery_info?delivery_id=``: every SMS of one delivery."""
        params = {"delivery_id": require_id("id_delivery", id_delivery)}
        return self._t.call(
            "GET",
            self._url("sms", "delivery_info"),
            DeliveryInfo.from_body,
            params=params,
            listing=True,
        )

    def sms_date_report(
        self, *, begin_date: date | str, end_date: date | str
    ) -> tuple[SmsRecord, ...]:
        """``GET /sms/date_report``: SMS sent between two dates, both inclusive."""
        params = {
            "begin_date": day("begin_date", begin_date),
            "end_date": day("end_date", end_date),
        }
        return self._t.call(
            "GET",
            self._url("sms", "date_report"),
            lambda b: SmsRecords.from_body(b).messages,
            params=params,
            listing=True,
        )

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
        url = self._url("email", "send_single")
        return self._t.call("POST", url, SendResult.from_body, json_body=body, send=True)

    def send_otp_email(
        self, *, dst_email: str, src_email: str, subject: str, email_content: str
    ) -> SendResult:
        """``POST /email/send_otp_email``."""
        body = {
            "dst_email": dst_email,
            "src_email": src_email,
            "subject": subject,
            "email_content": email_content,
        }
        url = self._url("email", "send_otp_email")
        return self._t.call("POST", url, SendResult.from_body, json_body=body, send=True)

    def get_email(self, *, id_email: str) -> EmailStatus:
        """``GET /email/:id``: status and ABIERTO/CLICKEADO events."""
        url = self._url("email", require_id("id_email", id_email))
        status = self._t.call("GET", url, EmailStatus.from_body)
        return status if status.id else replace(status, id=id_email)

    def email_balance(self) -> int:
        """``GET /email/balance``: e-mails left."""
        return self._t.call("GET", self._url("email", "balance"), _balance)

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
        url = self._url("whatsapp", "send_message")
        return self._t.call("POST", url, SendResult.from_body, json_body=body, send=True)

    def whatsapp_status(self, *, message_id: str) -> WhatsAppStatus:
        """``GET /whatsapp/status?message_id=``."""
        params = {"message_id": require_id("message_id", message_id)}
        return self._t.call(
            "GET", self._url("whatsapp", "status"), WhatsAppStatus.from_body, params=params
        )

    def whatsapp_messages(self, *, src_number: str, dst_number: str) -> tuple[WhatsAppMessage, ...]:
        """``GET /whatsapp/messages``: the conversation between two numbers."""
        params = {"src_number": src_number, "dst_number": dst_number}
        return self._t.call(
            "GET",
            self._url("whatsapp", "messages"),
            lambda b: WhatsAppMessages.from_body(b).messages,
            params=params,
        )
