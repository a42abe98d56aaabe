"""The one error tree of the Connectus client.

Low-level failures (httpx exceptions, HTTP statuses, SMPP and platform
statuses in response bodies) are mapped to this tree once, at the client
boundary, with ``raise ... from exc``. The table that maps every documented
status to a class is :mod:`worker.connectus.classify`. The *type alone*
decides what the worker does::

    ConnectusError
    ├── TransientError          retry: nothing was sent, nothing was charged
    │   ├── ConnectFailed           connect refused / connect timeout / pool timeout
    │   ├── RateLimited             HTTP 429 (``retry_after_s`` from Retry-After)
    │   ├── ServiceUnavailable      HTTP 502, 503 (and 408)
    │   └── ProviderBusy            ESME_RMSGQFUL, ESME_RSYSERR, ESME_RX_T_APPN, ...
    │       ├── Throttled           ESME_RTHROTTLED (0x58): the operator's rate limit
    │       └── SubmitRefused       ESME_RSUBMITFAIL, ESME_RDELIVERYFAILURE, ESME_RUNKNOWNERR:
    │                               often temporary; a few durable retries, then a dead letter
    ├── AmbiguousError          may have been sent and charged: reconcile, never resend blindly
    │   ├── ResponseTimeout         read (or write) timeout after the request went out
    │   ├── ConnectionDropped       connection closed mid-response (or mid-request)
    │   ├── AmbiguousServerError    HTTP 500, 504
    │   └── MalformedResponse       2xx whose body can't be understood
    ├── PermanentError          fail once, dead-letter with the reason
    │   ├── InvalidRequest          HTTP 400/422, invalid-field SMPP statuses
    │   │   └── InvalidNumber           NUMERO_INVALIDO, ESME_RINVDSTADR, ...
    │   ├── NotFound                HTTP 404
    │   └── Rejected                ESME_RX_P_APPN, ESME_RX_R_APPN, other refusals
    └── AccountError            pause: a scope (account, product, country), not one message
        ├── AuthenticationFailed    HTTP 401, 403                           (the account)
        ├── OperatorLoginFailed     ESME_RBINDFAIL, ESME_RINVPASWD, ESME_RINVSYSID (the account)
        ├── ProductDenied           ESME_RPROHIBITED, ESME_RSERTYPUNAUTH     (the product)
        ├── BalanceExhausted        HTTP 402 or a body saying the balance is spent
        │                           (the product's balance; SMS: that country's)
        └── SessionDisconnected     the WhatsApp QR session is not paired (a QR answer
                                    with status DISCONNECTED or "not connected")

The ``outcome`` class attribute names the decision (``retry``, ``ambiguous``,
``permanent``, ``pause``) so logs, metrics and job records speak one word.
What each leads to is the worker's one policy (:func:`worker.policy.decide`);
which scope a pause covers is :mod:`worker.breaker_scopes`'s.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Outcome = Literal["retry", "ambiguous", "permanent", "pause"]


class ConnectusError(Exception):
    """Base of every failure raised by the Connectus client.

    ``reason`` is a short machine-readable code (e.g. ``http_503``,
    ``ESME_RTHROTTLED``, ``read_timeout``); ``status_code`` is the HTTP status
    when there was a response.
    """

    outcome: ClassVar[Outcome]
    #: Durable retries allowed before a dead letter, when fewer than the
    #: worker's ``DURABLE_MAX_RETRIES`` (None: that setting alone decides).
    max_durable_retries: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status_code = status_code
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, status_code={self.status_code!r})"


class TransientError(ConnectusError):
    """Nothing was sent; retrying is safe."""

    outcome = "retry"


class ConnectFailed(TransientError):
    """The request never reached Connectus (refused, DNS, connect timeout)."""


class RateLimited(TransientError):
    """HTTP 429; ``retry_after_s`` carries Retry-After when given."""


class ServiceUnavailable(TransientError):
    """HTTP 502 or 503 (or 408): refused before the platform took the message."""


class ProviderBusy(TransientError):
    """A temporary SMPP status: the operator refused for now."""


class Throttled(ProviderBusy):
    """ESME_RTHROTTLED: the operator's rate limit was exceeded."""


class SubmitRefused(ProviderBusy):
    """An operator refusal, often temporary: not accepted, so not charged.

    A few durable retries ride out a route or handset briefly unavailable; a
    refusal that persists is dead-lettered (docs/errors.md).
    """

    max_durable_retries = 3


class AmbiguousError(ConnectusError):
    """The request went out and may have been sent and charged."""

    outcome = "ambiguous"


class ResponseTimeout(AmbiguousError):
    """Read timeout after the request was written (or a write timeout part-way)."""


class ConnectionDropped(AmbiguousError):
    """The connection closed before the whole response arrived (or while writing)."""


class AmbiguousServerError(AmbiguousError):
    """HTTP 500 or 504: the platform may have accepted the message."""


class MalformedResponse(AmbiguousError):
    """A 2xx answer whose body could not be understood."""


class PermanentError(ConnectusError):
    """Retrying cannot help; the message is dead-lettered with its reason."""

    outcome = "permanent"


class InvalidRequest(PermanentError):
    """HTTP 400/422, or an SMPP status naming an invalid field."""


class InvalidNumber(InvalidRequest):
    """The destination number is invalid (NUMERO_INVALIDO, ESME_RINVDSTADR...)."""


class NotFound(PermanentError):
    """HTTP 404 (on a send: a wrong path, subclient or delivery)."""


class Rejected(PermanentError):
    """The platform or the operator refused this message for good."""


class AccountError(ConnectusError):
    """A scope (the account, a product, a balance) is unusable: pause it."""

    outcome = "pause"


class AuthenticationFailed(AccountError):
    """HTTP 401/403: a wrong or revoked API key."""


class OperatorLoginFailed(AccountError):
    """The operator refused the account's login: no SMS of the account can go."""


class ProductDenied(AccountError):
    """The product is not allowed to the account (ESME_RPROHIBITED, ESME_RSERTYPUNAUTH)."""


class BalanceExhausted(AccountError):
    """No balance left for this product (or country, or subclient)."""


class SessionDisconnected(AccountError):
    """The WhatsApp QR session is not paired: no QR send can go until ``GET /qr`` is scanned."""
