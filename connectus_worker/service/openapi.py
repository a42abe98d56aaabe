"""What the OpenAPI document says beyond what FastAPI sees in the routes.

The handlers read their own bodies (:func:`service.body.json_body`: bounded while
read), so their request bodies and RFC 7807 answers are declared here, from the same
pydantic models that validate and answer. tests/integration's schemathesis test checks
the running app against the document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from connectus_worker.domain.requests import MESSAGE_ADAPTER
from connectus_worker.service.campaign_schemas import CampaignProblem, CampaignRequest
from connectus_worker.service.problems import ID_PATTERN
from connectus_worker.service.schemas import (
    OptOutChange,
    OptOutLookup,
    Problem,
    SmsIncomingWebhook,
    SmsStatusWebhook,
)

_REF = "#/components/schemas/{model}"
_ECHO = {"X-Request-ID": {"description": "The correlation id", "schema": {"type": "string"}}}
ACCEPTED_HEADERS = {
    **_ECHO,
    "Location": {"schema": {"type": "string"}},
    "Idempotent-Replayed": {"schema": {"type": "string"}},
}
_DESCRIPTIONS = {
    400: "The body is not a JSON object",
    401: "Missing or wrong credentials",
    404: "No such job or campaign (unknown, or its record expired)",
    409: "A request with this Idempotency-Key is still in progress",
    413: "The body is larger than the configured limit",
    415: "The body is not declared as JSON",
    422: "Invalid fields, listed in invalid-params",
    503: "Redis is unavailable, or not ready",
}
# An id of another shape is a 404 (problems.found), so the pattern is only documented.
JobId = Annotated[str, Path(description="From POST /v1/messages (anything else: 404)",
                            json_schema_extra={"pattern": ID_PATTERN})]  # fmt: skip
CampaignId = Annotated[str, Path(description="From POST /v1/campaigns (anything else: 404)",
                                 json_schema_extra={"pattern": ID_PATTERN})]  # fmt: skip


async def request_id(
    _: Annotated[str | None, Header(alias="X-Request-ID", description="Correlation id (1-128 "
                                    "of A-Z a-z 0-9 . _ : -); generated if absent")] = None,
) -> None:  # fmt: skip
    """Documents the header on every route; :mod:`service.middleware` reads it."""


def problems(*codes: int, model: str = "Problem") -> dict[int | str, dict[str, Any]]:
    """``responses=`` for problem+json answers (FastAPI would call them application/json)."""
    content = {"application/problem+json": {"schema": {"$ref": _REF.format(model=model)}}}
    return {c: {"description": _DESCRIPTIONS[c], "content": content, "headers": _ECHO}
            for c in codes}  # fmt: skip


def ok(description: str, headers: dict[str, Any] = _ECHO) -> dict[str, Any]:
    return {"description": description, "headers": headers}


#: ``responses=`` of the control routes (cancel, pause, resume).
CONTROL_ANSWERS = {
    200: ok("Done (now or by an earlier call)"),
    **problems(401, 404, 503),
    409: {**problems(409)[409], "description": "The current state refuses it (named in "
          "detail), e.g. a job already sent or a finished campaign"},
}  # fmt: skip


def body(model: str) -> dict[str, Any]:
    """``openapi_extra=`` for a JSON body the handler reads itself (a schema's name)."""
    schema = {"$ref": _REF.format(model=model)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Make ``app.openapi()`` FastAPI's document plus the schemas only the handlers use,
    without FastAPI's own 422 (every error here is a problem). Built once, on first use."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)  # fmt: skip
        models: list[tuple[type[BaseModel], Any]] = [
            (Problem, "serialization"),
            (CampaignProblem, "serialization"),
            (CampaignRequest, "validation"),
            (SmsStatusWebhook, "validation"),
            (SmsIncomingWebhook, "validation"),
            (OptOutChange, "validation"),
            (OptOutLookup, "validation"),
        ]
        _, defs = models_json_schema(models, ref_template=_REF)
        union = MESSAGE_ADAPTER.json_schema(ref_template=_REF)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas.update({**defs["$defs"], **union.pop("$defs"), "MessageRequest": union})
        for path in document["paths"].values():
            for operation in path.values():
                answer = operation["responses"].get("422", {})
                if "HTTPValidationError" in str(answer.get("content")):
                    del operation["responses"]["422"]
        app.openapi_schema = document
        return document

    return openapi
