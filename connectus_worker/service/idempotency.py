"""HTTP ``Idempotency-Key``, Stripe semantics, stored in Redis.

A first request takes an in-flight marker (``SET NX PX``) and stores a 2xx
answer for ``INTAKE_IDEMPOTENCY_TTL_S``; the same key and body replay it
(``Idempotent-Replayed: true``), another body is a 422, a key still in flight a
409; errors are not stored, so a corrected retry with the same key works. Keys
are per tenant (docs/service.md, "Idempotency"). :func:`idempotency_key` and
:meth:`HttpIdempotency.run` are the gate of every intake POST, so all behave alike.
"""

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import redis
from fastapi import Header
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from connectus_worker.domain.hashing import fingerprint
from connectus_worker.domain.validation import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    FieldError,
    InvalidInput,
    validate_idempotency_key,
)
from connectus_worker.ledger.keys import Keys
from connectus_worker.luascript import load
from connectus_worker.redis import text
from connectus_worker.service.problems import ProblemError

IDEMPOTENCY_HEADER = "Idempotency-Key"

#: How long an in-flight marker outlives a crashed request, in ms.
LOCK_TTL_MS = 30_000

# service/lua/: each file says its KEYS, ARGV and answer.
_BEGIN = load(__package__, "idempotency_begin.lua")
_FINISH = load(__package__, "idempotency_finish.lua")


class HttpIdempotency:
    def __init__(self, client: redis.Redis, keys: Keys, *, ttl_s: int, digest_key: bytes) -> None:
        self.keys = keys
        # The HMAC key of the request fingerprints (CONTENT_HASH_KEY): a plain
        # hash of an OTP body would give the code away (issue 21, High 2).
        self.digest_key = digest_key
        self.ttl_s = ttl_s
        self._begin = client.register_script(_BEGIN)
        self._finish = client.register_script(_FINISH)

    async def run(
        self,
        scope: str,
        key: str | None,
        request_print: Mapping[str, Any],
        accept: Callable[[], Response],
    ) -> Response:
        """Run ``accept`` (in the thread pool); with a ``key``, at most once per ``(scope, key)``.

        ``request_print``: what makes two requests the same (method, path, parsed
        body), compared canonically. A 2xx answer is stored with its ``Location``
        header and replayed.
        """
        if key is None:
            return await run_in_threadpool(accept)
        names = [self.keys.http_answer(scope, key), self.keys.http_lock(scope, key)]
        body_print = fingerprint(dict(request_print), key=self.digest_key)
        lock = uuid.uuid4().hex
        outcome, stored = await run_in_threadpool(self._begin, names, [lock, LOCK_TTL_MS])
        if text(outcome) == "busy":
            raise ProblemError(
                409, "a request with this Idempotency-Key is still in progress; retry later"
            )
        if text(outcome) == "stored":
            answer = json.loads(stored)
            if answer["fingerprint"] != body_print:
                raise key_reused("with a different body")
            headers = {**answer["headers"], "Idempotent-Replayed": "true"}
            return Response(
                answer["body"], answer["status"], headers, media_type="application/json"
            )
        data, ttl_s = "", 0
        try:
            response = await run_in_threadpool(accept)
            if 200 <= response.status_code < 300:
                location = response.headers.get("location")
                answer = {"fingerprint": body_print, "status": response.status_code,
                          "body": bytes(response.body).decode(),
                          "headers": {"Location": location} if location else {}}  # fmt: skip
                data, ttl_s = json.dumps(answer), self.ttl_s
            return response
        finally:
            # Errors are not stored (data ""): a corrected retry with the same key must work.
            await run_in_threadpool(self._finish, names, [lock, data, ttl_s])


def key_reused(reason: str) -> ProblemError:
    """The 422 for a key already used with another body; nothing more (not the other
    job's id, nor which field differs: issue 21, the answer would be an oracle on OTPs)."""
    return ProblemError(
        422,
        "this Idempotency-Key was already used with a different request body",
        errors=[FieldError(IDEMPOTENCY_HEADER, f"was already used {reason}")],
    )


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
