"""Marketing opt-outs: numbers that answered STOP (or another keyword) to us.

The set ``{prefix}:optout`` holds phone numbers in the form
:func:`core.validation.normalize_number` returns (E.164 digits without
'+', ``56987654321``); the HTTP service adds to it when an incoming SMS is an
opt-out keyword. Only *marketing* sends (``priority="bulk"``) to those numbers
are refused; OTPs and transactional messages always go out, because the
person asked them (a login code, a receipt) and the law treats them apart.

E-mail has no opt-out source here, so e-mail sends are never refused.

Wiring in :class:`producers.api.Producer` (one call, before enqueueing)::

    refuse_if_opted_out(self.redis, self.store.keys, request)
"""

from __future__ import annotations

import redis

from core.keys import Keys
from core.models import Kind
from core.requests import SendRequest
from core.validation import InvalidInput

#: The reason given for a refused send (also the intake's ``invalid-params`` reason).
OPTED_OUT_REASON = "opted out of marketing messages"

#: The payload field that carries the destination phone number, per kind.
_NUMBER_FIELD = {
    Kind.SMS: "dst_number",
    Kind.WHATSAPP: "dst_number",
    Kind.WHATSAPP_QR: "number",
}


def optout_key(keys: Keys) -> str:
    """Set: normalised phone numbers opted out of marketing."""
    return keys.opt_out


def is_opted_out(client: redis.Redis, keys: Keys, number: str) -> bool:
    """True if ``number`` (normalised, digits only) opted out of marketing.

    A leading '+' is tolerated, so an E.164 number with '+' matches too.
    """
    return bool(client.sismember(optout_key(keys), number.strip().removeprefix("+")))


def add_opt_out(client: redis.Redis, keys: Keys, number: str) -> bool:
    """Record an opt-out; True if the number was not opted out before."""
    return bool(client.sadd(optout_key(keys), number.strip().removeprefix("+")))


def number_field(kind: Kind) -> str | None:
    """The field naming the destination phone number of ``kind``; None for e-mail."""
    return _NUMBER_FIELD.get(kind)


def refuse_if_opted_out(client: redis.Redis, keys: Keys, request: SendRequest) -> None:
    """Raise :class:`InvalidInput` for a marketing send to an opted-out number.

    OTP kinds are never marketing (their queue ignores the priority), and
    e-mail is not covered; everything else is checked only when ``bulk``.
    """
    field = number_field(request.kind)
    if request.priority != "bulk" or field is None:
        return
    if is_opted_out(client, keys, request.dst):
        raise InvalidInput(field, OPTED_OUT_REASON)
