"""Opt-outs over HTTP, for an operator holding an intake token.

- ``POST /v1/optouts`` ``{"number", "opted_out"}``: opt out (as STOP) or back in
  (as ALTA / START); idempotent (the state asked for; ``changed`` says whether
  this call changed it). Recorded in the number's history with source ``intake``.
- ``POST /v1/optouts/lookup`` ``{"number"}``: the state and the history.
- ``GET /v1/optouts?cursor=&count=``: a page of opted-out numbers.

Numbers travel in bodies, never in paths: paths end up in access logs.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import structlog
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectus_worker.domain.validation import InvalidInput, invalid_from_pydantic, normalize_number
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.optout import Action, change, history, is_opted_out, list_opted_out
from connectus_worker.service.auth import BearerAuth
from connectus_worker.service.body import parse_json_object, read_body, require_json
from connectus_worker.service.optout_schemas import OptOutChange, OptOutLookup
from connectus_worker.service.problems import ProblemError

log = structlog.get_logger("connectus_worker.service.optouts")

MAX_PAGE = 1000


class OptOuts:
    def __init__(
        self, client: redis.Redis, keys: Keys, auth: BearerAuth, *, default_region: str,
        max_body_bytes: int, hash_key: bytes,
    ) -> None:  # fmt: skip
        self.hash_key = hash_key
        self.client = client
        self.keys = keys
        self.auth = auth
        self.default_region = default_region
        self.max_body_bytes = max_body_bytes

    async def set_state(self, request: Request) -> Response:
        self.auth.check(request)
        body: OptOutChange = await self._body(request, OptOutChange)
        digits = self._number(body.number)
        action: Action = "out" if body.opted_out else "in"
        changed = await run_in_threadpool(
            lambda: change(
                self.client,
                self.keys,
                digits,
                action,
                source="intake",
                hash_key=self.hash_key,
                now_ms=int(time.time() * 1000),
            )
        )
        log.info("opt-out changed", number=digits, action=action, changed=changed)
        return JSONResponse({"number": digits, "opted_out": body.opted_out, "changed": changed})

    async def lookup(self, request: Request) -> Response:
        self.auth.check(request)
        body: OptOutLookup = await self._body(request, OptOutLookup)
        digits = self._number(body.number)

        def read() -> dict[str, Any]:
            changes = [
                c.to_json() for c in history(self.client, self.keys, digits, hash_key=self.hash_key)
            ]
            opted_out = is_opted_out(self.client, self.keys, digits)
            return {"number": digits, "opted_out": opted_out, "history": changes}

        return JSONResponse(await run_in_threadpool(read))

    async def list_page(self, request: Request) -> Response:
        self.auth.check(request)
        cursor = _query_int(request, "cursor", 0, 0, 2**63 - 1)
        count = _query_int(request, "count", 100, 1, MAX_PAGE)
        next_cursor, numbers = await run_in_threadpool(
            lambda: list_opted_out(self.client, self.keys, cursor=cursor, count=count)
        )
        return JSONResponse({"numbers": numbers, "next_cursor": next_cursor})

    async def _body(self, request: Request, model: type[Any]) -> Any:
        require_json(request)
        data = parse_json_object(await read_body(request, self.max_body_bytes))
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ProblemError.from_invalid(invalid_from_pydantic(exc)) from exc

    def _number(self, value: str | int) -> str:
        try:
            return normalize_number(value, field="number", default_region=self.default_region)
        except InvalidInput as exc:
            raise ProblemError.from_invalid(InvalidInput("number", exc.reason)) from exc


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ProblemError.from_invalid(
            InvalidInput(name, f"must be a whole number from {low} to {high}")
        )
    return int(raw)
