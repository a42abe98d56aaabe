"""The intake: ``POST /v1/messages`` and ``GET /v1/messages/{job_id}``.

Request flow: bearer token → Idempotency-Key shape → JSON content type →
body (bounded while read) → idempotency gate → the one validation
(:func:`domain.requests.parse_request`) → the producer (opt-out of marketing and
the atomic enqueue).
Redis work runs in the thread pool: the producer is synchronous, and the
event loop must keep answering (health checks, webhooks) meanwhile.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import connectus_worker.tracing as tracing
from connectus_worker.domain.requests import parse_request
from connectus_worker.domain.validation import FieldError, InvalidInput
from connectus_worker.ledger.jobs import IdempotencyConflict
from connectus_worker.producers.api import JobNotFound, Producer
from connectus_worker.producers.optout import OPTED_OUT_REASON
from connectus_worker.service.auth import BearerAuth
from connectus_worker.service.body import parse_json_object, read_body, require_json
from connectus_worker.service.idempotency import (
    IDEMPOTENCY_HEADER,
    HttpIdempotency,
    idempotency_key,
    run_once,
)
from connectus_worker.service.metrics import Metrics
from connectus_worker.service.problems import ProblemError

log = structlog.get_logger("connectus_worker.service.intake")

#: What a job id may look like (ours are 32 hex digits); anything else is a 404.
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


class Intake:
    """``producers``: one per tenant (:mod:`config.tenants`); the caller's token
    picks it, so its keys, reads and writes are that tenant's."""

    def __init__(
        self,
        producers: Mapping[str, Producer],
        auth: BearerAuth,
        idempotency: HttpIdempotency,
        metrics: Metrics,
        *,
        max_body_bytes: int,
    ) -> None:
        self.producers = producers
        self.auth = auth
        self.idempotency = idempotency
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def post_message(self, request: Request) -> Response:
        # The trace of the message starts here (or continues the caller's, from its
        # traceparent header); the worker's spans join it (tracing).
        attributes = {"http.request.method": "POST", "http.route": "/v1/messages"}
        with tracing.span("POST /v1/messages", "server", attributes, dict(request.headers)):
            try:
                answer: Response | ProblemError = await self._post_message(request)
            except ProblemError as exc:  # a refusal, not a failure of the span
                answer = exc
            status = answer.status if isinstance(answer, ProblemError) else answer.status_code
            tracing.annotate(**{"http.response.status_code": status})
        if isinstance(answer, ProblemError):
            raise answer
        return answer

    async def _post_message(self, request: Request) -> Response:
        tenant = self.auth.check(request)
        key = idempotency_key(request)
        require_json(request)
        body = parse_json_object(await read_body(request, self.max_body_bytes))
        request_id: str = request.state.request_id
        producer = self.producers[tenant]
        if key is None:
            return await run_in_threadpool(self._accept, producer, body, None, request_id)
        request_print = {"method": "POST", "path": "/v1/messages", "body": body}
        return await run_once(
            self.idempotency,
            tenant,
            key,
            request_print,
            functools.partial(self._accept, producer, body, key, request_id),
        )

    def _accept(
        self, producer: Producer, body: dict[str, Any], key: str | None, request_id: str
    ) -> JSONResponse:
        """Validate and enqueue (in a worker thread); 202 with the job id and state."""
        try:
            request = parse_request(body, producer.settings, tenant=producer.tenant)
            job_id = producer.submit(request, key, request_id)
        except InvalidInput as exc:
            if any(error.reason == OPTED_OUT_REASON for error in exc.errors):
                self.metrics.opt_out_refusals.inc()
            raise ProblemError.from_invalid(exc) from exc
        except IdempotencyConflict as exc:
            # Nothing beyond "different body": not the other job's id, nor which
            # field differs (issue 21: the answer is an oracle on OTP contents).
            raise ProblemError(
                422,
                "this Idempotency-Key was already used with a different request body",
                errors=[FieldError(IDEMPOTENCY_HEADER, "was already used for a different message")],
            ) from exc
        record = producer.get_status(job_id)
        log.info("message accepted", job_id=job_id, kind=request.type, state=record.state.value)
        return JSONResponse(
            {"job_id": job_id, "state": record.state.value},
            status_code=202,
            headers={"Location": f"/v1/messages/{job_id}"},
        )

    async def get_message(self, request: Request) -> Response:
        tenant = self.auth.check(request)
        job_id = request.path_params["job_id"]
        if not _JOB_ID.match(job_id):
            raise ProblemError(404, "no such job")
        try:
            # Another tenant's job is a 404 like an unknown one.
            record = await run_in_threadpool(self.producers[tenant].get_status, job_id)
        except JobNotFound as exc:
            raise ProblemError(404, str(exc)) from exc
        return JSONResponse(record.model_dump(mode="json"))
