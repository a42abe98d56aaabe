"""Opt-outs over HTTP, for an operator holding an intake token.

- ``POST /v1/optouts`` ``{"number", "opted_out"}``: opt out (as STOP) or back in
  (as ALTA / START); idempotent (the state asked for; ``changed`` says whether
  this call changed it). Recorded in the number's history with source ``intake``.
- ``POST /v1/optouts/lookup`` ``{"number"}``: the state and the history.
- ``GET /v1/optouts?cursor=&count=``: a page of opted-out numbers.

Numbers travel in bodies, never in paths: paths end up in access logs.
"""

import time
from typing import Annotated, Any, Literal, TypeVar

import redis
import structlog
from fastapi import Depends, FastAPI, Query
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from connectus_worker.domain.validation import InvalidInput, invalid_from_pydantic, normalize_number
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.optout import change, history, is_opted_out, list_opted_out
from connectus_worker.service.auth import BearerAuth
from connectus_worker.service.body import json_body
from connectus_worker.service.openapi import body, ok
from connectus_worker.service.openapi import problems as answers
from connectus_worker.service.problems import ProblemError
from connectus_worker.service.schemas import (
    OptOutChange,
    OptOutHistory,
    OptOutLookup,
    OptOutPage,
    OptOutState,
)

log = structlog.get_logger("connectus_worker.service.optouts")

MAX_PAGE = 1000
L = TypeVar("L", bound=OptOutLookup)
_ANSWERS = answers(400, 401, 413, 415, 422, 503)


def optout_routes(
    app: FastAPI, client: redis.Redis, keys: Keys, auth: BearerAuth, *, default_region: str,
    max_body_bytes: int, hash_key: bytes,
) -> None:  # fmt: skip
    authorized = [Depends(auth)]  # before the body is read: 401 first
    Body = Annotated[dict[str, Any], Depends(json_body(max_body_bytes))]

    def number_of(data: dict[str, Any], model: type[L]) -> tuple[L, str]:
        """The body validated by ``model``, and its number as E.164 digits (422 otherwise)."""
        try:
            parsed = model.model_validate(data)
            number = normalize_number(parsed.number, field="number", default_region=default_region)
        except ValidationError as exc:
            raise ProblemError.from_invalid(invalid_from_pydantic(exc)) from exc
        except InvalidInput as exc:
            raise ProblemError.from_invalid(InvalidInput("number", exc.reason)) from exc
        return parsed, number

    @app.post("/v1/optouts", operation_id="setOptOut", dependencies=authorized,
                 summary="Opt a number out of marketing, or back in (idempotent; recorded)",
                 response_model=OptOutState,
                 responses={200: ok("The number's state now"), **_ANSWERS},
                 openapi_extra=body("OptOutChange"))  # fmt: skip
    def set_state(data: Body) -> Response:
        parsed, digits = number_of(data, OptOutChange)
        action: Literal["out", "in"] = "out" if parsed.opted_out else "in"
        changed = change(client, keys, digits, action, source="intake", hash_key=hash_key,
                         now_ms=int(time.time() * 1000))  # fmt: skip
        log.info("opt-out changed", number=digits, action=action, changed=changed)
        return JSONResponse({"number": digits, "opted_out": parsed.opted_out, "changed": changed})

    @app.post("/v1/optouts/lookup", operation_id="lookupOptOut", dependencies=authorized,
                 summary="A number's opt-out state and every recorded change (time, source)",
                 response_model=OptOutHistory, responses={200: ok("State and history"), **_ANSWERS},
                 openapi_extra=body("OptOutLookup"))  # fmt: skip
    def lookup(data: Body) -> Response:
        _, digits = number_of(data, OptOutLookup)
        changes = [c.to_json() for c in history(client, keys, digits, hash_key=hash_key)]
        opted_out = is_opted_out(client, keys, digits)
        return JSONResponse({"number": digits, "opted_out": opted_out, "history": changes})

    @app.get("/v1/optouts", operation_id="listOptOuts", dependencies=authorized,
                summary="A page of the numbers opted out of marketing", response_model=OptOutPage,
                responses={200: ok("A page; next_cursor 0 = the last"),
                           **answers(401, 422, 503)})  # fmt: skip
    def list_page(
        cursor: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        count: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> Response:
        next_cursor, numbers = list_opted_out(client, keys, cursor=cursor, count=count)
        return JSONResponse({"numbers": numbers, "next_cursor": next_cursor})
