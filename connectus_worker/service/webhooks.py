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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from connectus_worker.config.accounts import DEFAULT_ACCOUNT
from connectus_worker.domain.validation import InvalidInput, invalid_from_pydantic, normalize_number
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.service.auth import WebhookAuth
from connectus_worker.service.body import parse_json_object, read_body
from connectus_worker.service.events import EventRecorder, Recorded
from connectus_worker.service.metrics import Metrics
from connectus_worker.service.problems import ProblemError
from connectus_worker.service.schemas import SmsIncomingWebhook, SmsStatusWebhook, text_id

log = structlog.get_logger("connectus_worker.service.webhooks")


class Webhooks:
    def __init__(
        self,
        store: JobStore,
        recorder: EventRecorder,
        auth: WebhookAuth | Mapping[str, WebhookAuth],
        metrics: Metrics,
        *,
        max_body_bytes: int,
        opt_out_keywords: frozenset[str],
        default_region: str,
        opt_in_keywords: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.recorder = recorder
        # By account: the routes without one are the default account's.
        self.auths = auth if isinstance(auth, Mapping) else {DEFAULT_ACCOUNT: auth}
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.opt_out_keywords = opt_out_keywords
        self.opt_in_keywords = opt_in_keywords
        self.default_region = default_region

    def _account(self, request: Request) -> str:
        """The route's account, once its credentials are checked (401; 404 if unknown)."""
        account = str(request.path_params.get("account", DEFAULT_ACCOUNT))
        auth = self.auths.get(account)
        if auth is None:
            raise ProblemError(404, "no webhook of that Connectus account here")
        auth.check(request)
        return account

    async def _payload(self, request: Request, model: type[BaseModel]) -> Any:
        # Content-Type is not required: what Connectus's sender declares is not documented.
        body = parse_json_object(await read_body(request, self.max_body_bytes))
        _refuse_coercible_ids(body)
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise ProblemError.from_invalid(invalid_from_pydantic(exc)) from exc

    async def sms_status(self, request: Request) -> JSONResponse:
        account = self._account(request)
        event: SmsStatusWebhook = await self._payload(request, SmsStatusWebhook)
        id_sms = _checked(text_id, event.id_sms, "id_sms")
        request_id: str = request.state.request_id
        job_id, recorded = await run_in_threadpool(
            self._record_status, id_sms, event.status, request_id
        )
        result = "duplicate" if recorded.duplicate else "recorded" if job_id else "unmatched"
        self.metrics.webhook_event("sms_status", event.status, result, account)
        log.info("sms status webhook", id_sms=id_sms, delivery_status=event.status,
                 job_id=job_id, result=result, applied=recorded.changed,
                 account=account)  # fmt: skip
        return _ack(recorded)

    def _record_status(
        self, id_sms: str, status: str, request_id: str
    ) -> tuple[str | None, Recorded]:
        # The provider index is written when the worker finishes the send; a status
        # racing ahead of it is published with an empty job_id ("unmatched").
        job_id = self.store.job_for_provider_id(id_sms)
        recorded = self.recorder.sms_status(
            id_sms=id_sms, status=status, job_id=job_id, now_ms=epoch_ms(), request_id=request_id
        )
        return job_id, recorded

    async def sms_incoming(self, request: Request) -> JSONResponse:
        account = self._account(request)
        event: SmsIncomingWebhook = await self._payload(request, SmsIncomingWebhook)
        id_sms = _checked(text_id, event.id_sms, "id_sms")
        src = self._number(event.src_number, "src_number")
        dst = self._number(event.dst_number, "dst_number")
        word = event.sms_content.strip().casefold()
        opt_out = word in self.opt_out_keywords
        opt_in = word in self.opt_in_keywords
        recorded = await run_in_threadpool(
            lambda: self.recorder.sms_incoming(
                id_sms=id_sms,
                src_number=src,
                dst_number=dst,
                src_provider=event.src_provider or "",
                sms_content=event.sms_content,
                sms_content_binary=event.sms_content_binary or "",
                opt_out=opt_out,
                opt_in=opt_in,
                now_ms=epoch_ms(),
                request_id=request.state.request_id,
            )
        )
        result = "duplicate" if recorded.duplicate else "recorded"
        self.metrics.webhook_event("sms_incoming", "-", result, account)
        if opt_out and recorded.changed:
            self.metrics.opt_outs.inc()
        if opt_in and recorded.changed:
            self.metrics.opt_ins.inc()
        # The content's length only: an incoming text is personal data.
        log.info("incoming sms webhook", id_sms=id_sms, src_number=src, result=result,
                 opt_out=opt_out, opt_in=opt_in, content_chars=len(event.sms_content),
                 account=account)  # fmt: skip
        return _ack(recorded)

    def _number(self, value: str | int, field: str) -> str:
        """E.164 digits when it is a phone number (as the opt-out set stores them);
        else the text as sent (short codes, alphanumeric senders)."""
        try:
            return normalize_number(value, field=field, default_region=self.default_region)
        except InvalidInput:
            return _checked(text_id, value, field)


#: Fields the models read as ``str | int``: pydantic's lax mode would turn
#: ``true`` into ``1`` and ``1.0`` into ``1``, i.e. record an event for message "1".
_ID_FIELDS = ("id_sms", "src_number", "dst_number")


def _refuse_coercible_ids(body: dict[str, Any]) -> None:
    """422 naming the field when an id is present but neither a string nor an integer."""
    for field in _ID_FIELDS:
        value = body.get(field)
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProblemError.from_invalid(
                InvalidInput(field, f"must be a string or an integer, not {_json_type(value)}")
            )


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _checked(check: Any, value: Any, field: str) -> str:
    try:
        result: str = check(value, field)
    except InvalidInput as exc:
        raise ProblemError.from_invalid(exc) from exc
    return result


def _ack(recorded: Recorded) -> JSONResponse:
    return JSONResponse({"result": "duplicate" if recorded.duplicate else "recorded"})
