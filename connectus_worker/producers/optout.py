"""Marketing opt-outs: numbers that answered STOP (or another keyword) to us.

The set ``{prefix}:optout`` holds numbers as :func:`domain.validation.normalize_number`
returns them (``56987654321``). Only *marketing* sends (``priority="bulk"``) to
them are refused; OTPs and transactional messages always go out (the person
asked for them), and e-mail has no opt-out source here. Every change (an
incoming keyword SMS, the CLI, the intake) is one script that also appends to
the number's history, a stream keyed by the number's HMAC under
``CONTENT_HASH_KEY`` (:func:`domain.hashing.recipient_digest`: a plain hash of a
number is reversed by trying every number; no index of plain numbers), capped at
``HISTORY_MAXLEN``: docs/service.md, "Opt-out".

:class:`producers.api.Producer` calls :func:`refuse_if_opted_out` once, before
it enqueues; the campaigns' claims test membership in the set in their scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import redis

from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.domain.models import Kind
from connectus_worker.domain.requests import SendRequest
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load

#: The reason given for a refused send (also the intake's ``invalid-params`` reason).
OPTED_OUT_REASON = "opted out of marketing messages"

#: The payload field that carries the destination phone number, per kind.
_NUMBER_FIELD = {
    Kind.SMS: "dst_number",
    Kind.WHATSAPP: "dst_number",
    Kind.WHATSAPP_QR: "number",
}


#: The most history entries kept per number (XADD MAXLEN ~).
HISTORY_MAXLEN = 200
_CHANGE = load(__package__, "optout_change.lua")

Action = Literal["out", "in"]


def optout_key(keys: Keys) -> str:
    """Set: normalised phone numbers opted out of marketing."""
    return keys.opt_out


def history_key(keys: Keys, number: str, *, hash_key: bytes) -> str:
    """Stream: the opt-out changes of ``number`` (E.164 digits), keyed by its HMAC."""
    return f"{keys.opt_out}:history:{recipient_digest(hash_key, number.strip().removeprefix('+'))}"


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a number's history; ``at_ms`` is epoch milliseconds."""

    action: str
    source: str
    changed: bool
    at_ms: int

    def to_json(self) -> dict[str, object]:
        return {"action": self.action, "source": self.source, "changed": self.changed,
                "at_ms": self.at_ms}  # fmt: skip


def change(
    client: redis.Redis,
    keys: Keys,
    number: str,
    action: Action,
    *,
    source: str,
    now_ms: int,
    hash_key: bytes,
) -> bool:
    """Opt ``number`` out (``out``) or back in (``in``) and record it; True if it changed.

    ``source`` says who asked (``cli``, ``intake``, ``sms:<id_sms>``...); never
    personal data. ``now_ms``: epoch milliseconds.
    """
    digits = number.strip().removeprefix("+")
    answer = client.register_script(_CHANGE)(
        keys=[optout_key(keys), history_key(keys, digits, hash_key=hash_key)],
        args=[digits, action, source, now_ms, HISTORY_MAXLEN],
    )
    return bool(int(answer[0]))


def history(client: redis.Redis, keys: Keys, number: str, *, hash_key: bytes) -> list[Change]:
    """The number's recorded changes, oldest first."""
    entries: list[Any] = client.xrange(history_key(keys, number, hash_key=hash_key)) or []
    return [_change(fields) for _, fields in entries]


def list_opted_out(
    client: redis.Redis, keys: Keys, *, cursor: int = 0, count: int = 100
) -> tuple[int, list[str]]:
    """A page of opted-out numbers (SSCAN): the next cursor (0 = done) and the numbers."""
    next_cursor, members = client.sscan(optout_key(keys), cursor=cursor, count=count)
    numbers = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
    return int(next_cursor), numbers


def _change(fields: dict[Any, Any]) -> Change:
    f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
         for k, v in fields.items()}  # fmt: skip
    return Change(action=f["action"], source=f["source"], changed=f["changed"] == "1",
                  at_ms=int(f["at_ms"]))  # fmt: skip


def is_opted_out(client: redis.Redis, keys: Keys, number: str) -> bool:
    """True if ``number`` (normalised, digits only) opted out of marketing.

    A leading '+' is tolerated, so an E.164 number with '+' matches too.
    """
    return bool(client.sismember(optout_key(keys), number.strip().removeprefix("+")))


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
