"""HTTP ``Idempotency-Key``, Stripe semantics, stored in Redis.

A first request takes an in-flight marker (``SET NX PX``) and stores a 2xx
answer for ``INTAKE_IDEMPOTENCY_TTL_S``; the same key and body replay it
(``Idempotent-Replayed: true``), another body is a 422, a key still in flight a
409; errors are not stored, so a corrected retry with the same key works. Keys
are per tenant, the answer and the marker in separate namespaces
(:mod:`ledger.keys`). The table and the key names: docs/service.md, "Idempotency".

:func:`idempotency_key` and :func:`run_once` are the gate every POST of the
intake goes through (``/v1/messages``, ``/v1/campaigns``), so both behave the
same way.
"""

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import redis
from fastapi import Header
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from connectus_worker.domain.hashing import fingerprint as canonical_fingerprint
from connectus_worker.domain.validation import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    FieldError,
    InvalidInput,
    validate_idempotency_key,
)
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load
from connectus_worker.service.problems import ProblemError

IDEMPOTENCY_HEADER = "Idempotency-Key"

#: How long an in-flight marker outlives a crashed request, in ms.
LOCK_TTL_MS = 30_000

# service/lua/: each file says its KEYS, ARGV and answer.
_BEGIN = load(__package__, "idempotency_begin.lua")
_FINISH = load(__package__, "idempotency_finish.lua")


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    fingerprint: str
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Begin:
    """``proceed`` (you hold the marker: ``lock``), ``replay``, ``mismatch`` or ``in_flight``."""

    outcome: Literal["proceed", "replay", "mismatch", "in_flight"]
    lock: str = ""
    answer: StoredAnswer | None = None


class HttpIdempotency:
    def __init__(self, client: redis.Redis, keys: Keys, *, ttl_s: int, digest_key: bytes) -> None:
        self.keys = keys
        # The HMAC key of the request fingerprints (CONTENT_HASH_KEY): a plain
        # hash of an OTP body would give the code away (issue 21, High 2).
        self.digest_key = digest_key
        self.ttl_s = ttl_s
        self._begin = client.register_script(_BEGIN)
        self._finish = client.register_script(_FINISH)

    def _names(self, scope: str, key: str) -> list[str]:
        return [self.keys.http_answer(scope, key), self.keys.http_lock(scope, key)]

    def begin(self, scope: str, key: str, fingerprint: str) -> Begin:
        lock = uuid.uuid4().hex
        status, stored = self._begin(keys=self._names(scope, key), args=[lock, LOCK_TTL_MS])
        status = status.decode() if isinstance(status, bytes) else status
        if status == "locked":
            return Begin("proceed", lock=lock)
        if status == "busy":
            return Begin("in_flight")
        data = json.loads(stored)
        answer = StoredAnswer(data["fingerprint"], data["status"], data["body"], data["headers"])
        if answer.fingerprint != fingerprint:
            return Begin("mismatch", answer=answer)
        return Begin("replay", answer=answer)

    def finish(self, scope: str, key: str, lock: str, answer: StoredAnswer | None) -> None:
        """Store ``answer`` (None: store nothing) and release the marker."""
        data = "" if answer is None else json.dumps(
            {"fingerprint": answer.fingerprint, "status": answer.status, "body": answer.body,
             "headers": answer.headers}
        )  # fmt: skip
        ttl_s = 0 if answer is None else self.ttl_s
        self._finish(keys=self._names(scope, key), args=[lock, data, ttl_s])


def idempotency_key(
    key: Annotated[str | None, Header(
        alias=IDEMPOTENCY_HEADER, description="Same key + same body replays the first answer",
        json_schema_extra={"pattern": "^[!-~]+$", "minLength": 1,
                           "maxLength": IDEMPOTENCY_KEY_MAX_CHARS})] = None,
) -> str | None:  # fmt: skip
    """A dependency: the request's ``Idempotency-Key`` (None if absent); a 422 naming it
    if malformed (the domain's check, the same as the producers')."""
    if key is not None:
        try:
            validate_idempotency_key(key, field=IDEMPOTENCY_HEADER)
        except InvalidInput as exc:
            raise ProblemError.from_invalid(exc) from exc
    return key


async def run_once(
    idempotency: HttpIdempotency,
    scope: str,
    key: str,
    request_print: Mapping[str, Any],
    accept: Callable[[], Response],
) -> Response:
    """Run ``accept`` (in the thread pool) at most once per ``(scope, key)``.

    ``request_print``: what makes two requests the same (method, path, parsed
    body), compared canonically. A 2xx answer is stored with its ``Location``
    header and replayed; an error is not stored, so a corrected retry works.
    """
    body_print = canonical_fingerprint(dict(request_print), key=idempotency.digest_key)
    begin = await run_in_threadpool(idempotency.begin, scope, key, body_print)
    if begin.outcome == "in_flight":
        raise ProblemError(
            409, "a request with this Idempotency-Key is still in progress; retry later"
        )
    if begin.outcome == "mismatch":
        raise ProblemError(
            422,
            "this Idempotency-Key was already used with a different request body",
            errors=[FieldError(IDEMPOTENCY_HEADER, "was already used with a different body")],
        )
    if begin.outcome == "replay" and begin.answer is not None:
        answer = begin.answer
        headers = {**answer.headers, "Idempotent-Replayed": "true"}
        return Response(answer.body, answer.status, headers, media_type="application/json")
    stored: StoredAnswer | None = None
    try:
        response = await run_in_threadpool(accept)
        if 200 <= response.status_code < 300:
            location = response.headers.get("location")
            headers = {"Location": location} if location else {}
            text = bytes(response.body).decode()
            stored = StoredAnswer(body_print, response.status_code, text, headers)
        return response
    finally:
        # Errors are not stored: a corrected retry with the same key must work.
        await run_in_threadpool(idempotency.finish, scope, key, begin.lock, stored)
