"""THE classification table: every failure and status Connectus can produce.

One place decides which :mod:`worker.connectus.errors` class a transport
failure, an HTTP status, an SMPP command status or a platform status maps to.
The client's boundary (:meth:`ConnectusClient.call`) asks this module and
raises (the bulk sender asks it about each item of a v1 bulk answer); nothing
else classifies. ``docs/errors.md`` shows these tables
(``python -m devtools.errors_table`` renders them).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connectus_worker.worker.connectus.errors import (
    AmbiguousServerError,
    AuthenticationFailed,
    BalanceExhausted,
    ConnectFailed,
    ConnectionDropped,
    ConnectusError,
    InvalidNumber,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    OperatorLoginFailed,
    ProductDenied,
    ProviderBusy,
    RateLimited,
    Rejected,
    ResponseTimeout,
    ServiceUnavailable,
    SessionDisconnected,
    SubmitRefused,
    Throttled,
)

ErrorClass = type[ConnectusError]

#: The contract: a provider id is the first of these that is present.
PROVIDER_ID_KEYS = ("id", "id_sms", "message_id", "id_email", "id_message")


@dataclass(frozen=True)
class Rule:
    """One row: ``error`` is None when the status is not a failure."""

    error: ErrorClass | None
    why: str
    code: int | None = None


@dataclass(frozen=True)
class Verdict:
    """What the boundary raises: the class, its ``reason`` code, Retry-After (s)."""

    error: ErrorClass
    reason: str
    retry_after_s: float | None = None


# --- transport failures (httpx), most specific first --------------------------
# Whether the request "may have gone out" decides retry vs ambiguous.
TRANSPORT: tuple[tuple[type[httpx.RequestError], ErrorClass, str], ...] = (
    (httpx.ConnectTimeout, ConnectFailed, "no connection was made; nothing was written"),
    (httpx.ConnectError, ConnectFailed, "refused, DNS or TLS failure before any request byte"),
    (httpx.PoolTimeout, ConnectFailed, "no free pooled connection; the request never left"),
    (httpx.ProxyError, ConnectFailed, "the proxy refused the tunnel; Connectus was not reached"),
    (httpx.UnsupportedProtocol, ConnectFailed, "bad URL scheme; nothing was sent"),
    (httpx.LocalProtocolError, InvalidRequest, "httpx refused to write our own malformed request"),
    (httpx.WriteTimeout, ResponseTimeout, "part of the request may be on the wire: can't prove"),
    (httpx.WriteError, ConnectionDropped, "broke while writing: the server may have it all"),
    (httpx.ReadTimeout, ResponseTimeout, "request written; the platform may be processing it"),
    (httpx.ReadError, ConnectionDropped, "connection broke while reading the answer"),
    (httpx.RemoteProtocolError, ConnectionDropped, "server closed or garbled the answer"),
    (httpx.DecodingError, MalformedResponse, "the answer arrived but could not be decoded"),
    (httpx.RequestError, ConnectionDropped, "any other failure: assume it may have gone out"),
)

# --- HTTP statuses -------------------------------------------------------------
HTTP: Mapping[int, Rule] = {
    400: Rule(InvalidRequest, "the platform refused the request as formed"),
    401: Rule(AuthenticationFailed, "missing or wrong API key: every call will fail"),
    402: Rule(BalanceExhausted, "no balance for this product/country/subclient"),
    403: Rule(AuthenticationFailed, "the key may not use this call: every call will fail"),
    404: Rule(NotFound, "unknown id, subclient, delivery or path"),
    408: Rule(ServiceUnavailable, "server gave up waiting for our request: not processed"),
    422: Rule(InvalidRequest, "a field failed validation"),
    429: Rule(RateLimited, "rate limit; wait Retry-After (seconds or HTTP-date)"),
    500: Rule(AmbiguousServerError, "failed somewhere after taking the request"),
    502: Rule(ServiceUnavailable, "gateway could not reach the platform"),
    503: Rule(ServiceUnavailable, "platform refused before taking the message"),
    504: Rule(AmbiguousServerError, "gateway timed out; the platform may have sent it"),
}
HTTP_REDIRECT = Rule(InvalidRequest, "redirects are not followed: fix the base URL")
HTTP_OTHER_4XX = Rule(InvalidRequest, "other client errors: resending the same request fails")
HTTP_OTHER_5XX = Rule(AmbiguousServerError, "other server errors: it may have been taken")

# --- SMPP command statuses (the collection's table, plus DELIVRD/UNDELIV) ------
# A send answer carrying a non-OK name was "not accepted, not charged" (contract).
_BIND = "Connectus' operator session, not this message"
_LOGIN = "every SMS of the account fails alike: pause the account"
_FIELD = "a field of the message as submitted"
_NEVER = "an operation this client never requests: refusal"
_BCAST = "broadcast field (we never broadcast): refused as submitted"


def _s(code: int, error: ErrorClass | None, why: str) -> Rule:
    return Rule(error, why, code)


SMPP: Mapping[str, Rule] = {
    "ESME_ROK": _s(0x00, None, "accepted (queued at the operator)"),
    "ESME_RINVMSGLEN": _s(0x01, InvalidRequest, "message length invalid: " + _FIELD),
    "ESME_RINVCMDLEN": _s(0x02, InvalidRequest, "PDU length invalid: " + _FIELD),
    "ESME_RINVCMDID": _s(0x03, InvalidRequest, "invalid command id: " + _FIELD),
    "ESME_RINVBNDSTS": _s(0x04, ProviderBusy, "wrong bind state: " + _BIND),
    "ESME_RALYBND": _s(0x05, ProviderBusy, "already bound: " + _BIND),
    "ESME_RINVPRTFLG": _s(0x06, InvalidRequest, "priority flag: " + _FIELD),
    "ESME_RINVREGDLVFLG": _s(0x07, InvalidRequest, "registered delivery flag: " + _FIELD),
    "ESME_RSYSERR": _s(0x08, ProviderBusy, "operator system (partly) unavailable"),
    "ESME_RINVSRCADR": _s(0x0A, InvalidRequest, "source address (src_number): " + _FIELD),
    "ESME_RINVDSTADR": _s(0x0B, InvalidNumber, "destination address invalid"),
    "ESME_RINVMSGID": _s(0x0C, InvalidRequest, "message id: " + _FIELD),
    "ESME_RBINDFAIL": _s(0x0D, OperatorLoginFailed, "operator login failed: " + _LOGIN),
    "ESME_RINVPASWD": _s(0x0E, OperatorLoginFailed, "operator login password: " + _LOGIN),
    "ESME_RINVSYSID": _s(0x0F, OperatorLoginFailed, "operator login system id: " + _LOGIN),
    "ESME_RCANCELFAIL": _s(0x11, Rejected, "cancel_sm failed: " + _NEVER),
    "ESME_RREPLACEFAIL": _s(0x13, Rejected, "replace_sm failed: " + _NEVER),
    "ESME_RMSGQFUL": _s(0x14, ProviderBusy, "operator queue full: later may work"),
    "ESME_RINVSERTYP": _s(0x15, InvalidRequest, "service type: " + _FIELD),
    "ESME_RINVNUMDESTS": _s(0x33, InvalidRequest, "number of destinations: " + _FIELD),
    "ESME_RINVDLNAME": _s(0x34, InvalidRequest, "distribution list name: " + _FIELD),
    "ESME_RINVDESTFLAG": _s(0x40, InvalidRequest, "destination flag: " + _FIELD),
    "ESME_RINVSUBREP": _s(0x42, InvalidRequest, "submit-with-replace unsupported: " + _FIELD),
    "ESME_RINVESMCLASS": _s(0x43, InvalidRequest, "esm_class: " + _FIELD),
    "ESME_RCNTSUBDL": _s(0x44, Rejected, "distribution lists denied for us"),
    "ESME_RSUBMITFAIL": _s(0x45, SubmitRefused, "generic refusal, often a passing route fault"),
    "ESME_RINVSRCTON": _s(0x48, InvalidRequest, "source TON: " + _FIELD),
    "ESME_RINVSRCNPI": _s(0x49, InvalidRequest, "source NPI: " + _FIELD),
    "ESME_RINVDSTTON": _s(0x50, InvalidNumber, "destination TON: the number's format"),
    "ESME_RINVDSTNPI": _s(0x51, InvalidNumber, "destination NPI: the number's format"),
    "ESME_RINVSYSTYP": _s(0x53, ProviderBusy, "bind system type: " + _BIND),
    "ESME_RINVREPFLAG": _s(0x54, InvalidRequest, "replace_if_present flag: " + _FIELD),
    "ESME_RINVNUMMSGS": _s(0x55, InvalidRequest, "number of messages: " + _FIELD),
    "ESME_RTHROTTLED": _s(0x58, Throttled, "the operator's rate limit: slow down, retry"),
    "ESME_RINVSCHED": _s(0x61, InvalidRequest, "scheduled delivery time: " + _FIELD),
    "ESME_RINVEXPIRY": _s(0x62, InvalidRequest, "validity period: " + _FIELD),
    "ESME_RINVDFTMSGID": _s(0x63, InvalidRequest, "predefined message id: " + _FIELD),
    "ESME_RX_T_APPN": _s(0x64, ProviderBusy, "receiver asks to retry later"),
    "ESME_RX_P_APPN": _s(0x65, Rejected, "receiver: permanent problem with this destination"),
    "ESME_RX_R_APPN": _s(0x66, Rejected, "receiver rejects this message: do not retry"),
    "ESME_RQUERYFAIL": _s(0x67, Rejected, "query_sm failed: " + _NEVER),
    "ESME_RINVTLVSTREAM": _s(0xC0, InvalidRequest, "optional part corrupt: " + _FIELD),
    "ESME_RTLVNOTALLWD": _s(0xC1, InvalidRequest, "TLV not allowed: " + _FIELD),
    "ESME_RINVTLVLEN": _s(0xC2, InvalidRequest, "TLV length: " + _FIELD),
    "ESME_RMISSINGTLV": _s(0xC3, InvalidRequest, "TLV missing: " + _FIELD),
    "ESME_RINVTLVVAL": _s(0xC4, InvalidRequest, "TLV value: " + _FIELD),
    "ESME_RDELIVERYFAILURE": _s(0xFE, SubmitRefused, "delivery attempt failed, often briefly"),
    "ESME_RUNKNOWNERR": _s(0xFF, SubmitRefused, "unexpected fault, not charged: a few retries"),
    "ESME_RSERTYPUNAUTH": _s(0x100, ProductDenied, "service not authorised: pause the product"),
    "ESME_RPROHIBITED": _s(0x101, ProductDenied, "operation denied to us: pause the product"),
    "ESME_RSERTYPUNAVAIL": _s(0x102, ProviderBusy, "service outage at the operator"),
    "ESME_RSERTYPDENIED": _s(0x103, Rejected, "content unacceptable for the service type"),
    "ESME_RINVDCS": _s(0x104, InvalidRequest, "data coding (the content's charset): " + _FIELD),
    "ESME_RINVSRCADDRSUBUNIT": _s(0x105, InvalidRequest, "source subunit: " + _FIELD),
    "ESME_RINVDSTADDRSUBUNIT": _s(0x106, InvalidNumber, "destination subunit invalid"),
    "ESME_RINVBCASTFREQINT": _s(0x107, InvalidRequest, _BCAST),
    "ESME_RINVBCASTALIAS_NAME": _s(0x108, InvalidRequest, _BCAST),
    "ESME_RINVBCASTAREAFMT": _s(0x109, InvalidRequest, _BCAST),
    "ESME_RINVNUMBCAST_AREAS": _s(0x10A, InvalidRequest, _BCAST),
    "ESME_RINVBCASTCNTTYPE": _s(0x10B, InvalidRequest, _BCAST),
    "ESME_RINVBCASTMSGCLASS": _s(0x10C, InvalidRequest, _BCAST),
    "ESME_RBCASTFAIL": _s(0x10D, Rejected, "broadcast_sm failed: " + _NEVER),
    "ESME_RBCASTQUERYFAIL": _s(0x10E, Rejected, "query_broadcast_sm failed: " + _NEVER),
    "ESME_RBCASTCANCELFAIL": _s(0x10F, Rejected, "cancel_broadcast_sm failed: " + _NEVER),
    "ESME_RINVBCAST_REP": _s(0x110, InvalidRequest, _BCAST),
    "ESME_RINVBCASTSRVGRP": _s(0x111, InvalidRequest, _BCAST),
    "ESME_RINVBCASTCHANIND": _s(0x112, InvalidRequest, _BCAST),
    "DELIVRD": Rule(None, "delivery receipt: delivered to the handset"),
    "UNDELIV": Rule(Rejected, "delivery receipt: the operator could not deliver it"),
}
# A send answer with an ESME_ name missing above: not accepted (contract), unknown why.
SMPP_UNKNOWN = Rule(Rejected, "unlisted SMPP status: not accepted; a human decides")

# --- platform statuses (v1, webhooks, platform_status) --------------------------
PLATFORM: Mapping[str, Rule] = {
    "PROGRAMADO": Rule(None, "scheduled in a delivery"),
    "EN_COLA": Rule(None, "queued at Connectus"),
    "ENVIADO_A_CARRIER": Rule(None, "handed to the operator"),
    "ESPERANDO_RESPUESTA": Rule(None, "waiting for the operator's receipt"),
    "NUMERO_ENVIADO": Rule(None, "e-mail sent, not yet confirmed delivered"),
    "ENTREGADO": Rule(None, "delivered"),
    "NO_ENTREGABLE": Rule(Rejected, "the operator could not deliver it"),
    "NUMERO_INVALIDO": Rule(InvalidNumber, "the destination number is invalid"),
}

# --- body texts meaning "balance exhausted" (lower-case substrings) ------------
# Matched only against the answer's `error`/`detail` fields, never the whole body
# (nor `message`, the QR API's content field): echoed content saying "sin saldo"
# must not pause the account.
BALANCE_TEXTS: tuple[str, ...] = (
    "insufficient balance",
    "not enough balance",
    "no balance",
    "balance exhausted",
    "saldo insuficiente",
    "sin saldo",
    "no tiene saldo",
    "saldo agotado",
)

# --- the WhatsApp QR session (QR API answers; chosen: docs/connectus-api.md) ----
# The collection documents no answer of the QR API. The sandbox refuses a QR call
# while the session is not paired with HTTP 409 {"success": false, "status":
# "DISCONNECTED", "error": "WhatsApp session not connected"}; the client also
# knows these statuses and texts in any error or 2xx send answer: a pause of
# every QR send (the ``qr_session`` breaker scope), not a failure of the message.
QR_SESSION_STATUSES: Mapping[str, Rule] = {
    "DISCONNECTED": Rule(SessionDisconnected, "the QR session is not paired: scan GET /qr"),
    "NOT_CONNECTED": Rule(SessionDisconnected, "the QR session is not paired: scan GET /qr"),
    "QR_PENDING": Rule(SessionDisconnected, "waiting for the QR code to be scanned"),
}
SESSION_TEXTS: tuple[str, ...] = (
    "session not connected",
    "not connected",
    "disconnected",
    "no conectad",
    "desconectad",
)


def for_exception(exc: httpx.RequestError) -> Verdict:
    """The class for an httpx transport failure; ``reason`` is e.g. ``read_timeout``."""
    for kind, error, _why in TRANSPORT:
        if isinstance(exc, kind):
            return Verdict(error, _snake(type(exc).__name__))
    raise AssertionError("unreachable: httpx.RequestError is the last row")  # pragma: no cover


def for_http(status_code: int, body: Any, retry_after: str | None = None) -> Verdict | None:
    """The verdict for a non-2xx answer (None for 2xx).

    A body on a client error may be more precise than the status: a balance
    text wins (pause), then a known SMPP/platform status, then a 400 naming
    ``dst_number`` (invalid number). 401/402/403/404/408/429 and 5xx are
    decided by the status alone. ``retry_after`` is the raw header.
    """
    if status_code < 300:
        return None
    other = HTTP_REDIRECT if status_code < 400 else HTTP_OTHER_4XX
    rule = HTTP.get(status_code) or (HTTP_OTHER_5XX if status_code >= 500 else other)
    if rule.error is None:
        return None
    wait_s = parse_retry_after(retry_after) if status_code in (429, 503) else None
    if rule.error is InvalidRequest:
        refined = _body_verdict(body)
        if refined is not None:
            return refined
        if isinstance(body, Mapping) and body.get("field") == "dst_number":
            return Verdict(InvalidNumber, "invalid_dst_number")
    return Verdict(rule.error, f"http_{status_code}", wait_s)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds (s), from delta-seconds or an HTTP-date.

    None when absent or unparseable (the caller then uses its own backoff).
    A date in the past means "now" (0.0): never a negative wait. ``now``
    (aware) is injectable for tests.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP-date is GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def for_send_body(body: Any) -> Verdict | None:
    """The verdict for a 2xx answer to a send (None when it was accepted).

    Accepted means a definite acceptance, with or without a provider id (the
    collection's SMS answers are only ``{"status": "<string>"}``): ``ESME_ROK``
    or another non-error status, or no status at all. A 2xx answer that names
    no message and yet carries an error text or a status no table knows is
    not read as an acceptance: it is ambiguous (``unknown``, reconciled).
    """
    if not isinstance(body, Mapping):
        return Verdict(MalformedResponse, "malformed_response")
    refined = _body_verdict(body)
    if refined is not None:
        return refined
    status = body.get("status")
    if isinstance(status, str) and status.startswith("ESME_") and status not in SMPP:
        return Verdict(Rejected, status)  # the SMPP_UNKNOWN row
    if body.get("success") is False:
        return Verdict(Rejected, "success_false")
    if not any(_is_id(body.get(key)) for key in PROVIDER_ID_KEYS):
        error = body.get("error")
        if isinstance(error, str) and error.strip():
            return Verdict(MalformedResponse, "error_text_without_id")
        if isinstance(status, str) and status and status not in SMPP and status not in PLATFORM:
            return Verdict(MalformedResponse, "unlisted_status_without_id")
    return None


def _is_id(value: Any) -> bool:
    # As :data:`answers.ProviderId` reads one: a non-empty text, or a number.
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value != ""
    )


def _body_verdict(body: Any) -> Verdict | None:
    if not isinstance(body, Mapping):
        return None
    for key in ("error", "detail"):
        text = body.get(key)
        if isinstance(text, str) and is_balance_text(text):
            return Verdict(BalanceExhausted, "balance_exhausted")
        if isinstance(text, str) and any(p in text.lower() for p in SESSION_TEXTS):
            return Verdict(SessionDisconnected, "qr_session_disconnected")
    status = body.get("status")
    if isinstance(status, str):
        rule = SMPP.get(status) or PLATFORM.get(status) or QR_SESSION_STATUSES.get(status)
        if rule is not None and rule.error is not None:
            return Verdict(rule.error, status)
    return None


def for_bulk_item(text: str) -> Verdict:
    """The verdict for one v1 bulk item's error text: the first SMPP or platform
    status it names, else a balance text, else ``Rejected`` (not accepted, and
    unknown why: a human decides, by replay)."""
    for word in text.replace(",", " ").replace(":", " ").split():
        rule = SMPP.get(word) or PLATFORM.get(word)
        if rule is not None:
            return Verdict(rule.error or Rejected, word)
    if is_balance_text(text):
        return Verdict(BalanceExhausted, "balance")
    return Verdict(Rejected, "bulk_item_error")


def is_balance_text(text: str) -> bool:
    """True when an error text says the balance is spent (English or Spanish)."""
    return any(phrase in text.lower() for phrase in BALANCE_TEXTS)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
