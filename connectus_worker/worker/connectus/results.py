"""Typed, frozen results of Connectus calls, parsed tolerantly from JSON answers.

Every result keeps the whole answer as ``raw`` (left out of ``repr`` so logs
stay short and free of message content). ``from_body`` raises
:class:`~worker.connectus.parsing.ParseError` only for a field the caller
cannot do without; the client turns that into ``MalformedResponse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectus_worker.worker.connectus.classify import DeliveryState, delivery_state
from connectus_worker.worker.connectus.parsing import (
    as_mapping,
    objects,
    opt_int,
    opt_str,
    provider_id,
    req_int,
    req_str,
)

Raw = Mapping[str, Any]


def _final_state(*statuses: str | None) -> DeliveryState | None:
    """The most advanced state among statuses (a receipt beats "queued")."""
    states = [s for s in map(delivery_state, statuses) if s is not None]
    final = [s for s in states if s is not DeliveryState.PENDING]
    return final[0] if final else (states[0] if states else None)


@dataclass(frozen=True)
class SendResult:
    """An accepted send: the provider's id when the answer carried one, and the rest.

    An accepted answer is a definite acceptance whether or not it names the
    message: the collection documents ``send_individual`` and ``send_otp`` as
    answering only ``{"status": "<string>"}`` and WhatsApp's answer not at
    all. ``provider_id`` is then None and the worker looks the id up later
    (:mod:`worker.id_lookup`). The boundary (:func:`classify.for_send_body`)
    has already refused every non-OK status before this parses the answer.
    """

    provider_id: str | None
    status: str | None
    segments: int | None
    id_delivery: str | None = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> SendResult:
        data = as_mapping(body)
        return cls(
            provider_id=provider_id(data),
            status=opt_str(data, "status"),
            segments=opt_int(data, "segments"),
            id_delivery=opt_str(data, "id_delivery"),
            raw=data,
        )


@dataclass(frozen=True)
class SmsRecord:
    """One SMS as ``GET /sms/:id``, ``delivery_info`` and ``date_report`` show it."""

    id: str | None
    status: str
    platform_status: str | None = None
    dst_number: str | None = None
    src_number: str | None = None
    sms_content: str | None = None
    id_delivery: str | None = None
    id_client: str | None = None
    segments: int | None = None
    created_at: str | None = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @property
    def state(self) -> DeliveryState | None:
        return _final_state(self.status, self.platform_status)

    @classmethod
    def from_body(cls, body: Any) -> SmsRecord:
        data = as_mapping(body, "SMS record")
        return cls(
            id=provider_id(data),
            status=req_str(data, "status"),
            platform_status=opt_str(data, "platform_status"),
            dst_number=opt_str(data, "dst_number"),
            src_number=opt_str(data, "src_number"),
            sms_content=opt_str(data, "sms_content"),
            id_delivery=opt_str(data, "id_delivery"),
            id_client=opt_str(data, "id_client"),
            segments=opt_int(data, "segments"),
            created_at=opt_str(data, "created_at"),
            raw=data,
        )

    @classmethod
    def many(cls, body: Any) -> tuple[SmsRecord, ...]:
        return tuple(cls.from_body(item) for item in objects(as_mapping(body), "messages"))


@dataclass(frozen=True)
class DeliveryInfo:
    """Every SMS of one delivery (``GET /sms/delivery_info``)."""

    id_delivery: str | None
    messages: tuple[SmsRecord, ...]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> DeliveryInfo:
        data = as_mapping(body)
        return cls(opt_str(data, "id_delivery"), SmsRecord.many(data), data)


@dataclass(frozen=True)
class Delivery:
    """A named, schedulable batch (``/deliveries``); ``deliver_at`` is account-local."""

    id: str
    name: str | None
    deliver_at: str | None
    id_product: int | None
    status: str | None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> Delivery:
        data = as_mapping(body)
        if isinstance(data.get("delivery"), Mapping):  # tolerate a wrapped answer
            data = data["delivery"]
        return cls(
            id=req_str(data, "id", "id_delivery"),
            name=opt_str(data, "name"),
            deliver_at=opt_str(data, "deliver_at"),
            id_product=opt_int(data, "id_product"),
            status=opt_str(data, "status"),
            raw=data,
        )


@dataclass(frozen=True)
class EmailEvent:
    event: str
    timestamp: str | None


@dataclass(frozen=True)
class EmailStatus:
    """An e-mail's status and its ABIERTO/CLICKEADO events (v3 and v1)."""

    id: str | None
    status: str
    events: tuple[EmailEvent, ...]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @property
    def state(self) -> DeliveryState | None:
        return delivery_state(self.status)

    @classmethod
    def from_body(cls, body: Any) -> EmailStatus:
        data = as_mapping(body)
        events = tuple(
            EmailEvent(event, opt_str(item, "timestamp", "event_timestamp"))
            for item in objects(data, "events")
            # v1's prose names the fields email_event/event_timestamp, its example event/timestamp
            if (event := opt_str(item, "event", "email_event")) is not None
        )
        return cls(provider_id(data), req_str(data, "status"), events, data)


@dataclass(frozen=True)
class WhatsAppStatus:
    message_id: str | None
    status: str
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> WhatsAppStatus:
        data = as_mapping(body)
        return cls(provider_id(data), req_str(data, "status"), data)


@dataclass(frozen=True)
class WhatsAppMessage:
    message_id: str | None
    src_number: str | None
    dst_number: str | None
    whatsapp_content: str | None
    status: str | None
    created_at: str | None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def many(cls, body: Any) -> tuple[WhatsAppMessage, ...]:
        return tuple(
            cls(
                message_id=provider_id(item),
                src_number=opt_str(item, "src_number"),
                dst_number=opt_str(item, "dst_number"),
                whatsapp_content=opt_str(item, "whatsapp_content"),
                status=opt_str(item, "status"),
                created_at=opt_str(item, "created_at"),
                raw=item,
            )
            for item in objects(as_mapping(body), "messages")
        )


def balance_from_body(body: Any) -> int:
    """``{"balance": 2312}`` or v1's ``{"balance": "1432"}`` as an int."""
    return req_int(as_mapping(body), "balance")
