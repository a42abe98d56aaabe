"""Messages over HTTP: ``POST /v1/messages``, ``GET /v1/messages/{job_id}`` and
``POST /v1/messages/{job_id}/cancel``.

``POST``: bearer token → Idempotency-Key shape → JSON content type → body (bounded
while read) → idempotency gate → :func:`domain.requests.parse_request` → the producer.
Redis work runs in the thread pool (FastAPI runs a plain ``def`` there). The caller's
token picks its tenant's producer, so another tenant's job is a 404 like an unknown one.
Cancel is POST, not DELETE (the record stays readable); a repeat answers 200, a state
that refuses it a 409.
"""

import functools
from collections.abc import Mapping
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from starlette.responses import JSONResponse, Response

import connectus_worker.tracing as tracing
from connectus_worker.domain.models import JobRecord, State
from connectus_worker.domain.requests import parse_request
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.jobs import IdempotencyConflict
from connectus_worker.producers.api import JobNotFound, Producer
from connectus_worker.producers.optout import OPTED_OUT_REASON
from connectus_worker.service.auth import BearerAuth
from connectus_worker.service.body import json_body
from connectus_worker.service.idempotency import (
    HttpIdempotency,
    idempotency_key,
    key_reused,
)
from connectus_worker.service.metrics import Metrics
from connectus_worker.service.openapi import ACCEPTED_HEADERS, CONTROL_ANSWERS, JobId, body, ok
from connectus_worker.service.openapi import problems as answers
from connectus_worker.service.problems import ProblemError, found
from connectus_worker.service.schemas import Accepted, MessageControlled

log = structlog.get_logger("connectus_worker.service.intake")


def message_routes(
    app: FastAPI,
    producers: Mapping[str, Producer],
    auth: BearerAuth,
    idempotency: HttpIdempotency,
    metrics: Metrics,
    *,
    max_body_bytes: int,
) -> None:
    """``producers``: one per tenant (:mod:`config.tenants`)."""
    Tenant = Annotated[str, Depends(auth)]

    def accept(producer: Producer, message: dict[str, Any], key: str | None,
               request_id: str) -> JSONResponse:  # fmt: skip
        try:
            request = parse_request(message, producer.settings, tenant=producer.tenant)
            job_id = producer.submit(request, key, request_id)
        except InvalidInput as exc:
            if any(error.reason == OPTED_OUT_REASON for error in exc.errors):
                metrics.opt_out_refusals.inc()
            raise ProblemError.from_invalid(exc) from exc
        except IdempotencyConflict as exc:
            raise key_reused("for a different message") from exc
        state = producer.get_status(job_id).state.value
        log.info("message accepted", job_id=job_id, kind=request.type, state=state)
        return JSONResponse({"job_id": job_id, "state": state}, status_code=202,
                            headers={"Location": f"/v1/messages/{job_id}"})  # fmt: skip

    @app.post("/v1/messages", status_code=202, operation_id="createMessage",
                 summary="Queue one message (SMS, OTP, e-mail, WhatsApp)", response_model=Accepted,
                 responses={202: ok("Queued or accepted; a replay carries "
                                    "Idempotent-Replayed: true", ACCEPTED_HEADERS),
                            **answers(400, 401, 409, 413, 415, 422, 503)},
                 openapi_extra=body("MessageRequest"))  # fmt: skip
    async def post_message(
        request: Request,
        tenant: Tenant,
        key: Annotated[str | None, Depends(idempotency_key)],
        message: Annotated[dict[str, Any], Depends(json_body(max_body_bytes))],
    ) -> Response:
        # The trace of the message starts here (or continues the caller's traceparent);
        # the worker's spans join it. A refusal is an answer, not a failure of the span.
        attributes = {"http.request.method": "POST", "http.route": "/v1/messages"}
        with tracing.span("POST /v1/messages", "server", attributes, dict(request.headers)):
            run = functools.partial(accept, producers[tenant], message, key,
                                    request.state.request_id)  # fmt: skip
            request_print = {"method": "POST", "path": "/v1/messages", "body": message}
            try:
                answer = await idempotency.run(tenant, key, request_print, run)
            except ProblemError as exc:
                refusal = exc
                tracing.annotate(**{"http.response.status_code": exc.status})
            else:
                tracing.annotate(**{"http.response.status_code": answer.status_code})
                return answer
        raise refusal

    @app.get("/v1/messages/{job_id}", operation_id="getMessage",
                summary="A job's record: state, provider id, delivery status",
                response_model=JobRecord, responses={200: ok("The record"),
                                                     **answers(401, 404, 503)})  # fmt: skip
    def get_message(job_id: JobId, tenant: Tenant) -> Response:
        record = found(producers[tenant].get_status, job_id, JobNotFound, "job")
        return JSONResponse(record.model_dump(mode="json"))

    @app.post("/v1/messages/{job_id}/cancel", operation_id="cancelMessage",
                 summary="Cancel a queued, scheduled or retrying message (idempotent)",
                 response_model=MessageControlled, responses=CONTROL_ANSWERS)  # fmt: skip
    def cancel_message(job_id: JobId, tenant: Tenant) -> Response:
        found(producers[tenant].get_status, job_id, JobNotFound, "job")
        answer = producers[tenant].cancel(job_id)
        if answer == "missing":  # expired between the two reads
            raise ProblemError(404, f"job_id: no job {job_id!r} (unknown, or its record expired)")
        if answer in ("cancelled", f"refused:{State.CANCELLED.value}"):
            log.info("message cancelled", job_id=job_id, repeat=answer != "cancelled")
            return JSONResponse({"job_id": job_id, "state": State.CANCELLED.value})
        state = answer.removeprefix("refused:")
        if state == State.QUEUED.value:  # a v1 bulk recipient: it goes with its chunk
            raise ProblemError(409, "this recipient of a v1 bulk campaign is sent with its "
                               "chunk: cancel its campaign instead")  # fmt: skip
        raise ProblemError(409, f"job {job_id} is {state}: only a queued, scheduled or "
                           "retrying job can be cancelled")  # fmt: skip
