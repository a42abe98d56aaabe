"""What FastAPI cannot see of the OpenAPI document, and how each route is described.

FastAPI writes the document from the routes (paths, operation ids, answer
models). The handlers read their own bodies (bounded while read, after the
idempotency gate, see :mod:`service.intake`), so their request bodies, the
headers they read, their path parameters and their RFC 7807 answers are
declared here, from the same pydantic models that validate and answer
(:mod:`domain.requests`, :mod:`service.schemas`, :mod:`service.campaign_schemas`).
The schemathesis test in tests/integration checks the running app against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from connectus_worker.config import Settings
from connectus_worker.domain.requests import MESSAGE_ADAPTER
from connectus_worker.domain.validation import IDEMPOTENCY_KEY_MAX_CHARS
from connectus_worker.service.campaign_schemas import CampaignProblem, CampaignRequest
from connectus_worker.service.optout_schemas import OptOutChange, OptOutLookup
from connectus_worker.service.schemas import Problem, SmsIncomingWebhook, SmsStatusWebhook

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
_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Correlation id (1-128 of A-Z a-z 0-9 . _ : -); generated if absent",
    "schema": {"type": "string"},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key + same body replays the first answer",
    "schema": {"type": "string", "pattern": "^[!-~]+$", "minLength": 1,
               "maxLength": IDEMPOTENCY_KEY_MAX_CHARS},
}  # fmt: skip


def problems(*codes: int, model: str = "Problem") -> dict[int | str, dict[str, Any]]:
    """``responses=`` for problem+json answers (FastAPI would call them application/json)."""
    content = {"application/problem+json": {"schema": {"$ref": _REF.format(model=model)}}}
    return {c: {"description": _DESCRIPTIONS[c], "content": content, "headers": _ECHO}
            for c in codes}  # fmt: skip


def ok(description: str, headers: dict[str, Any] = _ECHO) -> dict[str, Any]:
    return {"description": description, "headers": headers}


def operation(
    *,
    body: str | None = None,
    security: str | None = "bearer",
    idempotent: bool = False,
    path: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """``openapi_extra=``: the body read by hand (a schema name), the headers read,
    the security scheme, and a path parameter ``(name, pattern, description)``."""
    parameters: list[dict[str, Any]] = [_IDEMPOTENCY_KEY] if idempotent else []
    if path is not None:
        name, pattern, description = path
        parameters.append({"name": name, "in": "path", "required": True,
                           "description": description,
                           "schema": {"type": "string", "pattern": pattern}})  # fmt: skip
    extra: dict[str, Any] = {"parameters": [*parameters, _REQUEST_ID]}
    if security is not None:
        extra["security"] = [{security: []}]
    if body is not None:
        schema = {"$ref": _REF.format(model=body)}
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return extra


def install_openapi(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """Make ``app.openapi()`` FastAPI's document plus the schemas only the handlers use,
    and the security schemes (webhooks: ``WEBHOOK_AUTH``). Built once, on first use."""

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
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.update({**defs["$defs"], **union.pop("$defs"), "MessageRequest": union})
        webhook = "webhookToken" if settings.webhook_auth == "token" else "webhookBasic"
        for path in document["paths"].values():
            for op in path.values():
                if op.get("security") == [{"webhook": []}]:
                    op["security"] = [{webhook: []}]
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "INTAKE_TOKENS"},
            "webhookToken": {"type": "apiKey", "in": "query", "name": "token",
                             "description": "WEBHOOK_SECRET (WEBHOOK_AUTH=token)"},
            "webhookBasic": {"type": "http", "scheme": "basic",
                             "description": "WEBHOOK_BASIC_USER/PASSWORD (WEBHOOK_AUTH=basic)"},
        }  # fmt: skip
        app.openapi_schema = document
        return document

    return openapi
