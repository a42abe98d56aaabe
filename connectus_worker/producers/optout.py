"""Marketing opt-outs: numbers that answered STOP (or another keyword) to us.

The set ``{prefix}:optout`` holds numbers as :func:`domain.validation.normalize_number`
returns them (``56987654321``). Only *marketing* sends (``priority="bulk"``) to them
are refused: OTPs and transactional messages always go out (the person asked for
them), and e-mail has no opt-out source here. Every change (a keyword SMS, the CLI,
the intake) is one script that also appends to the number's history, a stream keyed
by the number's HMAC (:func:`domain.hashing.recipient_digest`: no index of plain
numbers), capped at ``HISTORY_MAXLEN`` (docs/service.md, "Opt-out").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis

from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.domain.requests import SendRequest
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load
from connectus_worker.redis import text

#: The reason given for a refused send (also the intake's ``invalid-params`` reason).
OPTED_OUT_REASON = "opted out of marketing messages"
#: The most history entries kept per number (XADD MAXLEN ~).
HISTORY_MAXLEN = 200
_CHANGE = load(__package__, "optout_change.lua")

Action = Literal["out", "in"]


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
        return asdict(self)


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
        keys=[keys.opt_out, history_key(keys, digits, hash_key=hash_key)],
        args=[digits, action, source, now_ms, HISTORY_MAXLEN],
    )
    return bool(int(answer[0]))


def history(client: redis.Redis, keys: Keys, number: str, *, hash_key: bytes) -> list[Change]:
    """The number's recorded changes, oldest first."""
    entries: list[Any] = client.xrange(history_key(keys, number, hash_key=hash_key)) or []
    changes = []
    for _, raw in entries:
        f = {text(k): text(v) for k, v in raw.items()}
        changes.append(Change(f["action"], f["source"], f["changed"] == "1", int(f["at_ms"])))
    return changes


def list_opted_out(
    client: redis.Redis, keys: Keys, *, cursor: int = 0, count: int = 100
) -> tuple[int, list[str]]:
    """A page of opted-out numbers (SSCAN): the next cursor (0 = done) and the numbers."""
    next_cursor, members = client.sscan(keys.opt_out, cursor=cursor, count=count)
    return int(next_cursor), sorted(map(text, members))


def is_opted_out(client: redis.Redis, keys: Keys, number: str) -> bool:
    """True if ``number`` (digits only; a leading '+' is tolerated) opted out of marketing."""
    return bool(client.sismember(keys.opt_out, number.strip().removeprefix("+")))


def refuse_if_opted_out(client: redis.Redis, keys: Keys, request: SendRequest) -> None:
    """Raise :class:`InvalidInput` for a marketing send to an opted-out number.

    Only kinds sent to a person's phone number (:attr:`KindSpec.phone`) are
    checked, and only when ``bulk`` (an OTP is never bulk: its queue ignores it).
    """
    spec = request.kind.spec
    if request.priority == "bulk" and spec.phone and is_opted_out(client, keys, request.dst):
        raise InvalidInput(spec.dst_field, OPTED_OUT_REASON)
