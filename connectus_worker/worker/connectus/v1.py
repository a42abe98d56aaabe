"""``client.v1``: the legacy API at ``CONNECTUS_V1_BASE_URL`` + ``/api_v1``.

Every example of the v1 document sends its parameters with
``requests.post(url, params=...)`` (or ``requests.get``): in the query string,
with no body. This client sends exactly that, for GETs and POSTs alike; the
``messages`` of ``send_sms_bulk`` are a JSON array in one parameter, each
``dst_number`` a JSON number (the document's type ``long`` and its example).
Query strings carry numbers and content, so no message of this client names a
URL beyond its path (:meth:`ConnectusClient.call`), and logs mask numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote_plus, urlencode

from connectus_worker.worker.connectus.answers import (
    Balance,
    BulkResult,
    DeliveryStatus,
    EmailStatus,
    MessageStatus,
    SendResult,
)
from connectus_worker.worker.connectus.base import SubApi, refuse, require_id, wall_clock

MAX_BULK_SMS = 1_000  # documented: "hasta 1.000 por consulta"

#: Longest query string sent (bytes, URL-encoded). The request line of common
#: servers is capped near 8 KiB (nginx 8,192 with its default buffers, Apache
#: 8,190), and httpx refuses URLs over 64 KiB: a bulk whose messages don't fit
#: is sent as several calls (:meth:`V1Api.bulk_groups`).
MAX_QUERY_BYTES = 8_000


def _bulk_item(message: Mapping[str, str]) -> dict[str, Any]:
    """One ``send_sms_bulk`` item; ``dst_number`` a JSON number, as the document shows it."""
    return {"dst_number": int(message["dst_number"]), "sms_content": message["sms_content"]}


class V1Api(SubApi):
    PREFIX = "/api_v1"
    max_query_bytes = MAX_QUERY_BYTES  # an instance may set its own

    def _fits(self, query: Mapping[str, Any]) -> Mapping[str, Any]:
        """``query`` when its URL-encoded form fits ``max_query_bytes``, else InvalidRequest."""
        size = len(urlencode({k: v for k, v in query.items() if v is not None}))
        if size > self.max_query_bytes:
            raise refuse(
                "query_too_long",
                f"v1 parameters are sent in the query string: {size} bytes encoded, "
                f"over {self.max_query_bytes}",
            )
        return query

    def _send(self, path: str, body: Mapping[str, Any]) -> SendResult:
        """POST a message, its fields in the query string (as every v1 example sends them)."""
        params = self._fits(body)
        return self._call("POST", SendResult.from_body, path, params=params, send=True)

    def bulk_groups(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        delivery_name: str,
        deliver_at: datetime | str,
    ) -> list[tuple[int, int]]:
        """``(start, end)`` ranges of ``messages`` whose ``send_sms_bulk`` query fits.

        In input order; one range when the whole bulk fits. A single message
        too long to fit on its own is a range of its own (its call is refused
        before sending, as :meth:`send_sms` would refuse it).
        """
        fixed = len(urlencode({"delivery_name": delivery_name,
                               "deliver_at": wall_clock("deliver_at", deliver_at)}))  # fmt: skip
        budget = self.max_query_bytes - fixed - len("&messages=") - len(quote_plus("[]"))
        separator = len(quote_plus(", "))
        groups: list[tuple[int, int]] = []
        start, used = 0, 0
        for index, message in enumerate(messages):
            size = len(quote_plus(json.dumps(_bulk_item(message), ensure_ascii=False)))
            if index > start and used + separator + size > budget:
                groups.append((start, index))
                start, used = index, 0
            used += size if index == start else separator + size
        if start < len(messages):
            groups.append((start, len(messages)))
        return groups

    def send_sms(self, *, dst_number: str, sms_content: str) -> SendResult:
        """``POST send_sms``; ``dst_number`` is 11 digits ``569...``; answers ``id_sms``."""
        return self._send("send_sms", {"dst_number": dst_number, "sms_content": sms_content})

    def send_sms_bulk(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        delivery_name: str,
        deliver_at: datetime | str,
    ) -> BulkResult:
        """``POST send_sms_bulk``: 1 to 1,000 ``{dst_number, sms_content}``.

        Checked before sending (InvalidRequest otherwise): the whole bulk is
        refused rather than sent in part. Per-message errors (e.g.
        ``NUMERO_INVALIDO``) come back as items, in input order.
        """
        if not 1 <= len(messages) <= MAX_BULK_SMS:
            raise refuse("bulk_size", f"send_sms_bulk takes 1..{MAX_BULK_SMS} messages")
        for index, message in enumerate(messages):
            if not message.get("dst_number") or not message.get("sms_content"):
                raise refuse("bulk_item", f"messages[{index}] needs dst_number and sms_content")
            if not str(message["dst_number"]).isdigit():
                raise refuse("bulk_item", f"messages[{index}].dst_number must be digits")
        items = [_bulk_item(m) for m in messages]
        query = {
            "messages": json.dumps(items, ensure_ascii=False),
            "delivery_name": delivery_name,
            "deliver_at": wall_clock("deliver_at", deliver_at),
        }
        parse = partial(BulkResult.from_body, expected=len(items))
        return self._call("POST", parse, "send_sms_bulk", params=self._fits(query), send=True)

    def check_sms_status(self, *, id_sms: str) -> MessageStatus:
        params = {"id_sms": require_id("id_sms", id_sms)}
        status = self._call("GET", MessageStatus.from_body, "check_sms_status", params=params)
        # The documented answer is only {"status"}: the id asked for is the id.
        return status if status.provider_id else replace(status, provider_id=id_sms)

    def check_delivery_status(self, *, id_delivery: str) -> DeliveryStatus:
        """``GET check_delivery_status?id_delivery=``: each message's platform status."""
        params = {"id_delivery": require_id("id_delivery", id_delivery)}
        path = "check_delivery_status"
        return self._call("GET", DeliveryStatus.from_body, path, params=params, listing=True)

    def check_balance(self) -> int:
        """``GET check_balance``: SMS left (documented as a string, returned as int)."""
        return self._call("GET", Balance.from_body, "check_balance").balance

    def send_email(
        self,
        *,
        dst_email: str,
        email_content: str,
        subject: str | None = None,
        sender: str | None = None,
        src_email: str | None = None,
    ) -> SendResult:
        """``POST send_email``; answers ``id_email``. ``src_email`` must be validated.

        ``subject`` is listed by the v1 document but its example omits it: optional.
        """
        query = {
            "dst_email": dst_email,
            "subject": subject,
            "email_content": email_content,
            "sender": sender,
            "src_email": src_email,
        }
        return self._send("send_email", query)

    def send_email_bulk(
        self,
        *,
        emails: Sequence[Mapping[str, str]],
        delivery_name: str,
        deliver_at: datetime | str,
        src_email: str | None = None,
    ) -> BulkResult:
        """``POST send_email_bulk``: ``{dst_email, subject, email_content, sender?}`` each."""
        if not emails:
            raise refuse("bulk_size", "send_email_bulk needs at least one e-mail")
        for index, email in enumerate(emails):
            if not all(email.get(k) for k in ("dst_email", "email_content")):
                raise refuse("bulk_item", f"emails[{index}] needs dst_email and email_content")
        query = {
            "emails": json.dumps([dict(e) for e in emails], ensure_ascii=False),
            "delivery_name": delivery_name,
            "deliver_at": wall_clock("deliver_at", deliver_at),
            "src_email": src_email,
        }
        parse = partial(BulkResult.from_body, expected=len(emails))
        return self._call("POST", parse, "send_email_bulk", params=self._fits(query), send=True)

    def check_email_status_events(self, *, id_email: str) -> EmailStatus:
        params = {"id_email": require_id("id_email", id_email)}
        path = "check_email_status_events"
        status = self._call("GET", EmailStatus.from_body, path, params=params)
        return status if status.id else replace(status, id=id_email)

    def check_email_balance(self) -> int:
        """``GET check_email_balance``: e-mails left."""
        return self._call("GET", Balance.from_body, "check_email_balance").balance
