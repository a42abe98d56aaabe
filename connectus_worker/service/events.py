"""Webhook events into Redis: dedupe, job record update and stream entry, atomically.

Each webhook is one Lua script, so a crash can never leave an event marked
as seen but not published (which a retried webhook could then not repair).

Stream ``{prefix}:events`` (``XADD MAXLEN ~ EVENTS_STREAM_MAXLEN``), flat
string fields, schema version ``v=1`` (see docs/service.md):

- ``kind=sms_status``: ``id_sms status job_id correlation_id received_at request_id``
- ``kind=sms_incoming``: ``id_sms src_number dst_number src_provider sms_content
  sms_content_binary opt_out opt_in received_at request_id``

Dedupe markers ``{prefix}:webhook-seen:{kind}:{id_sms}[:{status}]`` live as
long as job records (``JOB_TTL_S``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis

from connectus_worker.ledger.delivery_status import STATUS_RANK
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load
from connectus_worker.producers.optout import HISTORY_MAXLEN, history_key
from connectus_worker.redis import text
from connectus_worker.service.schemas import SmsIncomingWebhook

# service/lua/: each file says its KEYS, ARGV and answer.
_STATUS = load(__package__, "status_event.lua")
_INCOMING = load(__package__, "incoming_event.lua")


@dataclass(frozen=True, slots=True)
class Recorded:
    """``duplicate``: seen before, nothing done; ``changed``: the record updated (status)
    or the number's opt-out state changed (incoming)."""

    duplicate: bool
    changed: bool


def events_key(keys: Keys) -> str:
    """Stream: events for other services (consumer groups welcome)."""
    return f"{keys.prefix}:events"


class EventRecorder:
    def __init__(
        self, client: redis.Redis, keys: Keys, *, seen_ttl_s: int, maxlen: int, hash_key: bytes
    ) -> None:
        self.hash_key = hash_key
        self.client = client
        self.keys = keys
        self.seen_ttl_s = seen_ttl_s
        self.maxlen = maxlen
        self._status = client.register_script(_STATUS)
        self._incoming = client.register_script(_INCOMING)

    def sms_status(
        self, *, id_sms: str, status: str, job_id: str | None, now_ms: int, request_id: str
    ) -> Recorded:
        """Record a status; updates the job's ``delivery_status`` if ``job_id`` is known,
        else keeps it pending until the send is recorded (see ledger.delivery_status)."""
        keys = [f"{self.keys.prefix}:webhook-seen:status:{id_sms}:{status}", events_key(self.keys),
                self.keys.status_pending, self.keys.status_pending_since]  # fmt: skip
        if job_id:
            keys.append(self.keys.job(job_id))
        rank = STATUS_RANK.get(status, 0)
        args: list[str | int] = [id_sms, status, now_ms, self.seen_ttl_s, self.maxlen, rank,
                job_id or "", request_id]  # fmt: skip
        return _recorded(self._status(keys=keys, args=args))

    def sms_incoming(
        self,
        event: SmsIncomingWebhook,
        *,
        id_sms: str,
        src_number: str,
        dst_number: str,
        opt: Literal["out", "in", ""],
        now_ms: int,
        request_id: str,
    ) -> Recorded:
        """Record an incoming SMS (the numbers normalised); ``opt``: add ``src_number`` to
        the opt-out set (out) or remove it (in), recorded in the number's opt-out history."""
        history = history_key(self.keys, src_number, hash_key=self.hash_key)
        keys = [f"{self.keys.prefix}:webhook-seen:incoming:{id_sms}", events_key(self.keys),
                self.keys.opt_out, history]  # fmt: skip
        flag = {"out": "1", "in": "2", "": "0"}[opt]
        args: list[str | int] = [id_sms, now_ms, self.seen_ttl_s, self.maxlen, flag, src_number,
                dst_number, event.src_provider or "", event.sms_content,
                event.sms_content_binary or "", request_id, HISTORY_MAXLEN]  # fmt: skip
        return _recorded(self._incoming(keys=keys, args=args))


def _recorded(answer: list[object]) -> Recorded:
    # The script's answer: outcome, changed (0/1), the stream entry's id.
    return Recorded(duplicate=text(answer[0]) == "duplicate", changed=text(answer[1]) == "1")
