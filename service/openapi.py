"""The OpenAPI 3.1 document, generated from the pydantic models the handlers use.

Paths and responses are written here; every schema comes from
:mod:`service.schemas`, :mod:`service.campaign_schemas` and
:class:`core.models.JobRecord`, so what is documented is what is validated
and returned (the schemathesis test in tests/integration checks the running
app against this document).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from config import Settings
from core.models import JobRecord
from core.requests import MESSAGE_ADAPTER
from core.validation import IDEMPOTENCY_KEY_MAX_CHARS
from service.campaign_schemas import (
    CampaignAccepted,
    CampaignProblem,
    CampaignRequest,
    CampaignStatusOut,
)
from service.campaigns import CAMPAIGN_ID_PATTERN
from service.intake import JOB_ID_PATTERN
from service.schemas import (
    Accepted,
    Problem,
    SmsIncomingWebhook,
    SmsStatusWebhook,
    WebhookAck,
)

_REF = "#/components/schemas/{model}"
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_DESCRIPTIONS = {
    400: "The body is not a JSON object",
    401: "Missing or wrong credentials",
    404: "No such job (unknown, or its record expired)",
    409: "A request with this Idempotency-Key is still in progress",
    413: "The body is larger than the configured limit",
    415: "The body is not declared as JSON",
    422: "Invalid fields, listed in invalid-params",
    503: "Redis is unavailable",
}
_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Correlation id (1-128 of A-Z a-z 0-9 . _ : -); generated if absent",
    "schema": {"type": "string"},
}
_ECHO = {"X-Request-ID": {"description": "The correlation id", "schema": {"type": "string"}}}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key + same body replays the first answer",
    "schema": {
        "type": "string",
        "pattern": "^[!-~]+$",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX_CHARS,
    },
}
_ACCEPTED_HEADERS = {
    **_ECHO,
    "Location": {"schema": {"type": "string"}},
    "Idempotent-Replayed": {"schema": {"type": "string"}},
}


def _problems(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": _DESCRIPTIONS[c], "content": _PROBLEM, "headers": _ECHO}
        for c in codes
    }


def _json(model: type[BaseModel] | str) -> dict[str, Any]:
    name = model if isinstance(model, str) else model.__name__
    return {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}


def build_openapi(settings: Settings) -> dict[str, Any]:
    """The document; webhook security follows ``WEBHOOK_AUTH``."""
    _, defs = models_json_schema(
        [
            (Accepted, "serialization"),
            (Problem, "serialization"),
            (JobRecord, "serialization"),
            (CampaignRequest, "validation"),
            (CampaignAccepted, "serialization"),
            (CampaignStatusOut, "serialization"),
            (CampaignProblem, "serialization"),
            (SmsStatusWebhook, "validation"),
            (SmsIncomingWebhook, "validation"),
            (WebhookAck, "serialization"),
        ],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = dict(defs["$defs"])
    union = MESSAGE_ADAPTER.json_schema(ref_template=_REF)
    schemas.update(union.pop("$defs"))
    schemas["MessageRequest"] = union
    webhook_security: list[dict[str, list[str]]] = (
        [{"webhookToken": []}] if settings.webhook_auth == "token" else [{"webhookBasic": []}]
    )
    webhook_ok = {
        "200": {
            "description": "Recorded, or a harmless duplicate",
            "content": _json(WebhookAck),
            "headers": _ECHO,
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "connectus-worker service",
            "version": "1",
            "description": "Message intake, Connectus webhooks, metrics and health. "
            "See docs/service.md.",
        },
        "paths": {
            "/v1/messages": {
                "post": {
                    "operationId": "createMessage",
                    "summary": "Queue one message (SMS, OTP, e-mail, WhatsApp)",
                    "security": [{"bearer": []}],
                    "parameters": [_IDEMPOTENCY_KEY, _REQUEST_ID],
                    "requestBody": {"required": True, "content": _json("MessageRequest")},
                    "responses": {
                        "202": {
                            "description": "Queued (or scheduled); a replay carries "
                            "Idempotent-Replayed: true",
                            "content": _json(Accepted),
                            "headers": _ACCEPTED_HEADERS,
                        },
                        **_problems(400, 401, 409, 413, 415, 422, 503),
                    },
                }
            },
            "/v1/messages/{job_id}": {
                "get": {
                    "operationId": "getMessage",
                    "summary": "A job's record: state, provider id, delivery status",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "job_id",
                            "in": "path",
                            "required": True,
                            "description": "From POST /v1/messages (anything else: 404)",
                            "schema": {"type": "string", "pattern": JOB_ID_PATTERN},
                        },
                        _REQUEST_ID,
                    ],
                    "responses": {
                        "200": {
                            "description": "The record",
                            "content": _json(JobRecord),
                            "headers": _ECHO,
                        },
                        **_problems(401, 404, 503),
                    },
                }
            },
            "/v1/campaigns": {
                "post": {
                    "operationId": "createCampaign",
                    "summary": "Accept a campaign: one template, a list of recipients",
                    "description": "Checked like `connectus campaign send` (no balance "
                    "check: the service holds no Connectus credentials). Lists larger than "
                    "INTAKE_MAX_BODY_BYTES go through the CLI or CampaignProducer.",
                    "security": [{"bearer": []}],
                    "parameters": [_IDEMPOTENCY_KEY, _REQUEST_ID],
                    "requestBody": {"required": True, "content": _json(CampaignRequest)},
                    "responses": {
                        "202": {
                            "description": "Accepted and scheduled (created: false when the "
                            "Idempotency-Key named an existing campaign); a replay carries "
                            "Idempotent-Replayed: true",
                            "content": _json(CampaignAccepted),
                            "headers": _ACCEPTED_HEADERS,
                        },
                        **_problems(400, 401, 409, 413, 415),
                        "422": {
                            "description": "Invalid fields (invalid-params), or the campaign "
                            "was refused (refusals, invalid_rows, plan)",
                            "content": {
                                "application/problem+json": {
                                    "schema": {"$ref": _REF.format(model="CampaignProblem")}
                                }
                            },
                            "headers": _ECHO,
                        },
                        **_problems(503),
                    },
                }
            },
            "/v1/campaigns/{campaign_id}": {
                "get": {
                    "operationId": "getCampaign",
                    "summary": "A campaign's state and progress: recipients by state, rate, ETA",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "campaign_id",
                            "in": "path",
                            "required": True,
                            "description": "From POST /v1/campaigns (anything else: 404)",
                            "schema": {"type": "string", "pattern": CAMPAIGN_ID_PATTERN},
                        },
                        _REQUEST_ID,
                    ],
                    "responses": {
                        "200": {
                            "description": "The campaign's status",
                            "content": _json(CampaignStatusOut),
                            "headers": _ECHO,
                        },
                        **_problems(401),
                        "404": {
                            "description": "No such campaign (unknown, or its record expired)",
                            "content": _PROBLEM,
                            "headers": _ECHO,
                        },
                        **_problems(503),
                    },
                }
            },
            "/webhooks/sms-status": {
                "post": {
                    "operationId": "smsStatusWebhook",
                    "summary": "Connectus SMS status callback",
                    "security": webhook_security,
                    "parameters": [_REQUEST_ID],
                    "requestBody": {"required": True, "content": _json(SmsStatusWebhook)},
                    "responses": {**webhook_ok, **_problems(400, 401, 413, 422, 503)},
                }
            },
            "/webhooks/sms-incoming": {
                "post": {
                    "operationId": "smsIncomingWebhook",
                    "summary": "Connectus incoming SMS callback",
                    "security": webhook_security,
                    "parameters": [_REQUEST_ID],
                    "requestBody": {"required": True, "content": _json(SmsIncomingWebhook)},
                    "responses": {**webhook_ok, **_problems(400, 401, 413, 422, 503)},
                }
            },
            "/healthz": {"get": _plain("healthz", "Liveness: the process answers", 200)},
            "/readyz": {
                "get": _plain("readyz", "Readiness: Redis answers PING within 1 s", 200, 503)
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                            "headers": _ECHO,
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "INTAKE_TOKENS"},
                "webhookToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "WEBHOOK_SECRET (WEBHOOK_AUTH=token)",
                },
                "webhookBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "WEBHOOK_BASIC_USER/PASSWORD (WEBHOOK_AUTH=basic)",
                },
            },
        },
    }


def _plain(operation: str, summary: str, *codes: int) -> dict[str, Any]:
    status = {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
    responses: dict[str, Any] = {}
    for code in codes:
        content = {"application/json": {"schema": status}} if code < 500 else _PROBLEM
        responses[str(code)] = {
            "description": "Ready" if code < 500 else "Not ready",
            "content": content,
            "headers": _ECHO,
        }
    return {"operationId": operation, "summary": summary, "responses": responses}
