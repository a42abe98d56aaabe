"""Connectus's answers: one pydantic dataclass per answer shape, validated in lax mode.

Fields the documents show are read as shown (``{"balance": "1432"}`` and ``2312``
alike). Elsewhere a model is tolerant: unknown fields are ignored; an optional
field missing, empty or of an unusable type is None; numeric ids read as text; a
list entry that is not an object is skipped. A missing required field is a
``ValidationError`` naming it, which the client's boundary turns into
``MalformedResponse``. ``raw`` keeps the whole object, out of ``repr`` and ``==``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from connectus_worker.worker.connectus.classify import PROVIDER_ID_KEYS


def _no_bool(value: Any) -> Any:
    # Lax mode reads true as 1: a boolean is never an id, a count or a text.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number or a text")
    return value


def _no_fraction(value: Any) -> Any:
    # An id sent as a number is text; 1.5 is neither an id nor a status.
    if isinstance(value, bool | float):
        raise ValueError("a text or a whole number is expected")
    return value


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _objects(value: Any) -> Any:
    # A listing that is not a list would read as "no messages" and hide lost ones.
    if value is None:
        return ()
    if isinstance(value, tuple):
        return value  # already read (dataclasses.replace validates again)
    if not isinstance(value, list):
        raise ValueError("is not a list")
    return [item for item in value if isinstance(item, Mapping)]


def aliases(*names: str) -> Any:
    """A field read from the first of ``names`` that is present."""
    return Field(validation_alias=AliasChoices(*names))


Text = Annotated[str, StringConstraints(min_length=1), BeforeValidator(_no_fraction)]
Int = Annotated[int, BeforeValidator(_no_bool)]
OptText = Annotated[Text | None, WrapValidator(_or_none)]
OptInt = Annotated[Int | None, WrapValidator(_or_none)]
OptBool = Annotated[StrictBool | None, WrapValidator(_or_none)]
ProviderId = Annotated[OptText, aliases(*PROVIDER_ID_KEYS)]
CONFIG = ConfigDict(coerce_numbers_to_str=True, populate_by_name=True)
#: A tuple read from a JSON list: absent is empty, non-object entries are skipped.
LISTED = BeforeValidator(_objects)


@dataclass(frozen=True, config=CONFIG)
class Answer:
    """The base of every answer: ``from_body`` validates, ``raw`` keeps the object.

    ``WRAPPER``: a key under which the answer may come wrapped
    (``{"delivery": {...}}``); ``RAW_OUTER``: ``raw`` keeps the wrapper too.
    """

    WRAPPER: ClassVar[str | None] = None
    RAW_OUTER: ClassVar[bool] = False

    raw: Annotated[Mapping[str, Any], SkipValidation] = field(
        default_factory=dict, repr=False, compare=False, kw_only=True
    )

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # positional construction, or not an object: validation says so
        inner = data.get(cls.WRAPPER) if cls.WRAPPER else None
        inner = inner if isinstance(inner, Mapping) else data
        return {**inner, "raw": data if cls.RAW_OUTER else inner}

    @classmethod
    def from_body(cls, body: Any, **context: Any) -> Self:
        """``body`` (decoded JSON) as this answer; ``ValidationError`` names what is wrong.

        ``context``: what the caller knows, e.g. ``expected`` items of a bulk.
        """
        adapter = _ADAPTERS.get(cls) or _ADAPTERS.setdefault(cls, TypeAdapter(cls))
        result: Self = adapter.validate_python(body, context=context)
        return result


_ADAPTERS: dict[type[Answer], TypeAdapter[Any]] = {}


def describe(exc: ValidationError) -> str:
    """``field: reason`` for each error (``answer`` for the whole object), for messages."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()
    )


# --- sends (v3 SMS/OTP/e-mail/WhatsApp, v1, QR) --------------------------------
@dataclass(frozen=True, config=CONFIG)
class SendResult(Answer):
    """An accepted send: the provider's id when the answer carried one, and the rest.

    An accepted answer is a definite acceptance whether or not it names the
    message: the collection documents ``send_individual`` and ``send_otp`` as
    answering only ``{"status": "<string>"}`` and WhatsApp's answer not at
    all. ``provider_id`` is then None and the worker looks the id up later
    (:mod:`worker.id_lookup`). The boundary (:func:`classify.for_send_body`)
    has already refused every non-OK status before this reads the answer.
    """

    provider_id: ProviderId = None
    status: OptText = None
    segments: OptInt = None
    id_delivery: OptText = None


@dataclass(frozen=True, config=CONFIG)
class BulkItem(Answer):
    """One message of a v1 bulk, in input order: a provider id, or an error."""

    provider_id: ProviderId = None
    error: OptText = None
    destination: Annotated[OptText, aliases("dst_number", "dst_email")] = None  # if echoed

    @property
    def ok(self) -> bool:
        return self.provider_id is not None and self.error is None


@dataclass(frozen=True, config=CONFIG)
class BulkResult(Answer):
    """The delivery a v1 bulk created, and one :class:`BulkItem` per input message
    (``messages``, or ``emails``)."""

    id_delivery: OptText = None
    items: Annotated[tuple[BulkItem, ...], LISTED, aliases("messages", "emails")] = ()

    @model_validator(mode="after")
    def _one_item_per_input(self, info: ValidationInfo) -> Self:
        # Items are matched to inputs by position: a count mismatch makes that a guess.
        expected = (info.context or {}).get("expected")
        if expected is not None and len(self.items) != expected:
            raise ValueError(f"bulk answer has {len(self.items)} items for {expected} inputs")
        return self


def _done_unless_false(value: Any) -> bool:
    return value if isinstance(value, bool) else True


@dataclass(frozen=True, config=CONFIG)
class Ack(Answer):
    """A call answering only "done" (balance moves, QR group calls).

    No ``success`` field (balance moves answer ``{"message": ...}``) means done:
    a refusal would have been a non-2xx or a ``success: false``, mapped earlier.
    """

    success: Annotated[bool, BeforeValidator(_done_unless_false)] = True
    message: OptText = None


# --- statuses and listings (reconciliation, status polling) --------------------
@dataclass(frozen=True, config=CONFIG)
class SmsRecord(Answer):
    """One SMS as ``GET /sms/:id``, ``delivery_info`` and ``date_report`` show it."""

    status: Text
    id: ProviderId = None
    platform_status: OptText = None
    dst_number: OptText = None
    src_number: OptText = None
    sms_content: OptText = None
    id_delivery: OptText = None
    id_client: OptText = None
    segments: OptInt = None
    created_at: OptText = None


@dataclass(frozen=True, config=CONFIG)
class SmsRecords(Answer):
    """``date_report``'s ``{"messages": [...]}``; ``delivery_info`` adds ``id_delivery``."""

    id_delivery: OptText = None
    messages: Annotated[tuple[SmsRecord, ...], LISTED] = ()


@dataclass(frozen=True, config=CONFIG)
class EmailEvent(Answer):
    # v1's prose names the fields email_event/event_timestamp, its example event/timestamp
    event: Annotated[Text, aliases("event", "email_event")]
    timestamp: Annotated[OptText, aliases("timestamp", "event_timestamp")] = None


def _named(events: Any) -> Any:
    # An event without a usable name tells nothing: skipped, as any unreadable entry.
    named = (
        e.get("event") or e.get("email_event") if isinstance(e, Mapping) else "" for e in events
    )
    return [e for e, name in zip(events, named, strict=True) if isinstance(name, str)]


@dataclass(frozen=True, config=CONFIG)
class EmailStatus(Answer):
    """An e-mail's status and its ABIERTO/CLICKEADO events (v3 and v1)."""

    status: Text
    id: ProviderId = None
    events: Annotated[tuple[EmailEvent, ...], BeforeValidator(_named), LISTED] = ()


@dataclass(frozen=True, config=CONFIG)
class WhatsAppMessage(Answer):
    message_id: ProviderId = None
    src_number: OptText = None
    dst_number: OptText = None
    whatsapp_content: OptText = None
    status: OptText = None
    created_at: OptText = None


@dataclass(frozen=True, config=CONFIG)
class WhatsAppMessages(Answer):
    messages: Annotated[tuple[WhatsAppMessage, ...], LISTED] = ()


@dataclass(frozen=True, config=CONFIG)
class MessageStatus(Answer):
    """A platform status (PROGRAMADO, EN_COLA, ... ENTREGADO) of one message (v1, WhatsApp)."""

    status: Text
    provider_id: ProviderId = None


@dataclass(frozen=True, config=CONFIG)
class DeliveryStatus(Answer):
    """v1 ``check_delivery_status``: ``{"delivery_status": {...}}`` (raw: the whole)."""

    WRAPPER = "delivery_status"
    RAW_OUTER = True

    id_delivery: OptText = None
    delivery_name: OptText = None
    messages: Annotated[tuple[MessageStatus, ...], LISTED] = ()


@dataclass(frozen=True, config=CONFIG)
class QrMessage(Answer):
    """One message of a QR conversation or group (``from_me``: we sent it)."""

    message_id: ProviderId = None
    number: Annotated[OptText, aliases("number", "from", "author")] = None
    message: Annotated[OptText, aliases("message", "body")] = None
    from_me: OptBool = None
    timestamp: OptText = None


@dataclass(frozen=True, config=CONFIG)
class QrMessages(Answer):
    messages: Annotated[tuple[QrMessage, ...], LISTED] = ()


# --- single values ---------------------------------------------------------------
@dataclass(frozen=True, config=CONFIG)
class Balance(Answer):
    """``{"balance": 2312}`` or v1's ``{"balance": "1432"}``."""

    balance: Int


@dataclass(frozen=True, config=CONFIG)
class QrCode(Answer):
    qr: Text


@dataclass(frozen=True, config=CONFIG)
class QrStatus(Answer):
    status: Text


@dataclass(frozen=True, config=CONFIG)
class InviteLink(Answer):
    invite_link: Annotated[Text, aliases("invite_link", "link")]
