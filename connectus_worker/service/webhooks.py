"""Webhook receivers: ``POST /webhooks/sms-status`` and ``POST /webhooks/sms-incoming``.

Connectus signs nothing, so the URL carries a secret (``?token=``) or the
request carries Basic credentials (``WEBHOOK_AUTH``). Each Connectus account has
its routes, ``/webhooks/<account>/sms-status`` and ``.../sms-incoming``, opened
by its own credentials only; the routes without an account are the
``default`` account's. An account this service does not have is a 404. A receiver only
validates, records into Redis (one script: dedupe, record update, stream
entry, opt-out) and answers: no slow work inline, since Connectus's sender
waits on us. A repeated webhook is acknowledged as ``duplicate`` and changes
nothing. Incoming SMS content goes to the stream only, never to the logs.
"""

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import structlog
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse

from connectus_worker.config.accounts import ACCOUNT_PATTERN
from connectus_worker.domain.validation import InvalidInput, invalid_from_pydantic, normalize_number
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.service.auth import WebhookAuth, webhook_account
from connectus_worker.service.body import json_body
from connectus_worker.service.events import EventRecorder, Recorded
from connectus_worker.service.metrics import Metrics
from connectus_worker.service.openapi import body, ok, problems
from connectus_worker.service.problems import ProblemError
from connectus_worker.service.schemas import (
    SmsIncomingWebhook,
    SmsStatusWebhook,
    WebhookAck,
)

log = structlog.get_logger("connectus_worker.service.webhooks")
M = TypeVar("M", bound=BaseModel)


def webhook_routes(
    app: FastAPI,
    store: JobStore,
    recorder: EventRecorder,
    auths: Mapping[str, WebhookAuth],
    metrics: Metrics,
    *,
    auth_mode: str,
    max_body_bytes: int,
    opt_out_keywords: frozenset[str],
    opt_in_keywords: frozenset[str],
    default_region: str,
) -> None:
    """``auths``: each Connectus account's credentials (the routes without an account
    are ``default``'s)."""
    Account = Annotated[str, Depends(webhook_account(auths, auth_mode))]
    # Content-Type is not required: what Connectus's sender declares is not documented.
    Body = Annotated[dict[str, Any], Depends(json_body(max_body_bytes, declared=False))]

    def number(value: str | int, field: str) -> str:
        """E.164 digits when it is a phone number (as the opt-out set stores them);
        else the text as sent (short codes, alphanumeric senders)."""
        try:
            return normalize_number(value, field=field, default_region=default_region)
        except InvalidInput:
            return _text_id(value, field)

    def sms_status(request: Request, account: Account, data: Body) -> JSONResponse:
        event = _payload(data, SmsStatusWebhook)
        id_sms = _text_id(event.id_sms, "id_sms")
        # The provider index is written when the worker finishes the send; a status
        # racing ahead of it is published with an empty job_id ("unmatched").
        job_id = store.job_for_provider_id(id_sms)
        recorded = recorder.sms_status(
            id_sms=id_sms,
            status=event.status,
            job_id=job_id,
            now_ms=epoch_ms(),
            request_id=request.state.request_id,
        )
        result = "duplicate" if recorded.duplicate else "recorded" if job_id else "unmatched"
        metrics.webhook_event("sms_status", event.status, result, account)
        log.info("sms status webhook", id_sms=id_sms, delivery_status=event.status,
                 job_id=job_id, result=result, applied=recorded.changed,
                 account=account)  # fmt: skip
        return _ack(recorded)

    def sms_incoming(request: Request, account: Account, data: Body) -> JSONResponse:
        event = _payload(data, SmsIncomingWebhook)
        id_sms = _text_id(event.id_sms, "id_sms")
        src = number(event.src_number, "src_number")
        word = event.sms_content.strip().casefold()
        opt: Literal["out", "in", ""] = (
            "out" if word in opt_out_keywords else "in" if word in opt_in_keywords else ""
        )
        recorded = recorder.sms_incoming(event, id_sms=id_sms, src_number=src,
                                         dst_number=number(event.dst_number, "dst_number"),
                                         opt=opt, now_ms=epoch_ms(),
                                         request_id=request.state.request_id)  # fmt: skip
        result = "duplicate" if recorded.duplicate else "recorded"
        metrics.webhook_event("sms_incoming", "-", result, account)
        if opt and recorded.changed:
            (metrics.opt_outs if opt == "out" else metrics.opt_ins).inc()
        # The content's length only: an incoming text is personal data.
        log.info("incoming sms webhook", id_sms=id_sms, src_number=src, result=result,
                 opt_out=opt == "out", opt_in=opt == "in", content_chars=len(event.sms_content),
                 account=account)  # fmt: skip
        return _ack(recorded)

    # The account's path parameter is read by the auth dependency: declared here.
    in_path = {"name": "account", "in": "path", "required": True, "description": "The "
               "Connectus account (CONNECTUS_ACCOUNTS)",
               "schema": {"type": "string", "pattern": ACCOUNT_PATTERN}}  # fmt: skip
    for prefix, suffix in (("/webhooks", ""), ("/webhooks/{account}", "OfAccount")):
        for path, handler, name, summary in (
            ("/sms-status", sms_status, "smsStatus", "SMS status"),
            ("/sms-incoming", sms_incoming, "smsIncoming", "incoming SMS"),
        ):
            app.add_api_route(
                prefix + path, handler, methods=["POST"], operation_id=f"{name}Webhook{suffix}",
                summary=f"Connectus {summary} callback" + (" of one account" if suffix else ""),
                response_model=WebhookAck,
                responses={200: ok("Recorded, or a harmless duplicate"),
                           **problems(400, 401, 404, 413, 422, 503)},
                openapi_extra={**body(name[0].upper() + name[1:] + "Webhook"),
                               "parameters": [in_path] if suffix else []},
            )  # fmt: skip


def _payload(data: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProblemError.from_invalid(invalid_from_pydantic(exc)) from exc


def _ack(recorded: Recorded) -> JSONResponse:
    return JSONResponse({"result": "duplicate" if recorded.duplicate else "recorded"})


def _text_id(value: str | int, field: str) -> str:
    """A provider id or number as text: 1-64 of A-Z a-z 0-9 _ - + (ints as digits)."""
    text = str(value).strip()
    if not text or len(text) > 64:
        raise ProblemError.from_invalid(InvalidInput(field, "must be 1-64 characters"))
    if not all(ch.isascii() and (ch.isalnum() or ch in "_-+") for ch in text):
        raise ProblemError.from_invalid(InvalidInput(field, "may only contain A-Z a-z 0-9 _ - +"))
    return text
