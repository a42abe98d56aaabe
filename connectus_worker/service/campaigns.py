"""Campaigns over HTTP: ``POST /v1/campaigns`` and ``GET /v1/campaigns/{campaign_id}``.

The same conventions as the message intake (:mod:`service.intake`): bearer
token → ``Idempotency-Key`` shape → JSON content type → body (bounded while
read, ``INTAKE_MAX_BODY_BYTES``) → idempotency gate → pydantic shape → the
producer (:class:`producers.campaigns.CampaignProducer`: options, row checks,
chunked storage and the atomic commit). Redis work and the row checks run in
the thread pool, so the event loop keeps answering meanwhile.

The ``Idempotency-Key`` is also the campaign's own idempotency key: a second
submission of the same campaign (another client, or after the HTTP answer
expired) answers the first campaign's id with ``created: false``, and the key
reused for a different campaign is a 422, as for messages.

The service holds no Connectus credentials, by design (it only talks to
Redis): the cost is checked against the balances the workers publish there
(:mod:`worker.balance_snapshot`); a missing or stale snapshot checks nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectus_worker.campaign.options import CampaignOptions, invalid_options
from connectus_worker.campaign.store import CampaignConflict
from connectus_worker.domain.validation import FieldError, InvalidInput
from connectus_worker.producers.campaign_control import CampaignControl, CampaignNotFound
from connectus_worker.producers.campaign_plan import CampaignPlan
from connectus_worker.producers.campaigns import CampaignProducer, CampaignRefused
from connectus_worker.service.auth import BearerAuth
from connectus_worker.service.body import parse_json_object, read_body, require_json
from connectus_worker.service.campaign_schemas import CampaignRequest
from connectus_worker.service.idempotency import (
    IDEMPOTENCY_HEADER,
    HttpIdempotency,
    idempotency_key,
    run_once,
)
from connectus_worker.service.intake import JOB_ID_PATTERN
from connectus_worker.service.problems import ProblemError

log = structlog.get_logger("connectus_worker.service.campaigns")

#: What a campaign id may look like (ours are 16 hex digits); anything else is a 404.
CAMPAIGN_ID_PATTERN = JOB_ID_PATTERN
_CAMPAIGN_ID = re.compile(CAMPAIGN_ID_PATTERN)
#: Producer field names that are named differently in the HTTP body.
_FIELD_NAMES = {"src_email": "src", "idempotency_key": IDEMPOTENCY_HEADER}
#: The producer's refusals speak the CLI's language; the body's fields are named instead.
_CLI_WORDS = {"--skip-invalid": '"skip_invalid": true', "--force": '"force": true'}


class CampaignIntake:
    """``producers`` and ``controls``: one of each per tenant (:mod:`config.tenants`);
    the caller's token picks them, so another tenant's campaign is a 404."""

    def __init__(
        self,
        producers: Mapping[str, CampaignProducer],
        controls: Mapping[str, CampaignControl],
        auth: BearerAuth,
        idempotency: HttpIdempotency,
        *,
        max_body_bytes: int,
    ) -> None:
        self.producers = producers
        self.controls = controls
        self.auth = auth
        self.idempotency = idempotency
        self.max_body_bytes = max_body_bytes

    async def post_campaign(self, request: Request) -> Response:
        tenant = self.auth.check(request)
        key = idempotency_key(request)
        require_json(request)
        body = parse_json_object(await read_body(request, self.max_body_bytes))
        accept = functools.partial(self._accept, self.producers[tenant], body, key)
        if key is None:
            return await run_in_threadpool(accept)
        request_print = {"method": "POST", "path": "/v1/campaigns", "body": body}
        return await run_once(self.idempotency, tenant, key, request_print, accept)

    def _accept(
        self, producer: CampaignProducer, body: dict[str, Any], key: str | None
    ) -> JSONResponse:
        """Validate, check and store the campaign (in a worker thread); 202 with its id."""
        try:
            campaign = CampaignRequest.model_validate(body)
        except ValidationError as exc:
            raise ProblemError.from_invalid(invalid_options(exc)) from exc
        options = CampaignOptions(**campaign.model_dump(exclude={"recipients"}),
                                  idempotency_key=key)  # fmt: skip
        try:
            accepted = producer.send(campaign.recipients, options)
        except InvalidInput as exc:
            errors = [FieldError(_FIELD_NAMES.get(e.field, e.field), e.reason) for e in exc.errors]
            raise ProblemError.from_invalid(InvalidInput.from_errors(errors)) from exc
        except CampaignRefused as exc:
            raise refusal_problem(exc.plan) from exc
        except CampaignConflict as exc:
            # Nothing beyond "different body": not the other campaign's id.
            raise ProblemError(
                422,
                "this Idempotency-Key was already used with a different request body",
                errors=[
                    FieldError(IDEMPOTENCY_HEADER, "was already used for a different campaign")
                ],
            ) from exc
        plan = accepted.plan.to_json()
        log.info(
            "campaign accepted",
            campaign_id=accepted.campaign_id,
            created=accepted.created,
            kind=campaign.kind,
            recipients=plan["valid"],
            invalid=plan["invalid"],
        )
        plan["refusals"] = [_http_words(text) for text in plan["refusals"]]
        return JSONResponse(
            {"campaign_id": accepted.campaign_id, "created": accepted.created, "plan": plan},
            status_code=202,
            headers={"Location": f"/v1/campaigns/{accepted.campaign_id}"},
        )

    async def get_campaign(self, request: Request) -> Response:
        tenant = self.auth.check(request)
        campaign_id = request.path_params["campaign_id"]
        if not _CAMPAIGN_ID.match(campaign_id):
            raise ProblemError(404, "no such campaign")
        try:
            status = await run_in_threadpool(self.controls[tenant].status, campaign_id)
        except CampaignNotFound as exc:
            raise ProblemError(404, str(exc)) from exc
        return JSONResponse(status.to_json())


def refusal_problem(plan: CampaignPlan) -> ProblemError:
    """422 for a refused campaign: why (``refusals``), the bad rows (``invalid_rows``,
    line = position in ``recipients`` from 1, also in ``invalid-params`` by JSON index)
    and the rest of the preflight (``plan``)."""
    summary = plan.to_json()
    refusals = [_http_words(text) for text in summary.pop("refusals")]
    invalid_rows: list[dict[str, Any]] = summary.pop("invalid_rows")
    return ProblemError(
        422,
        "campaign refused: " + "; ".join(refusals),
        title="Campaign refused",
        errors=[_row_error(row) for row in invalid_rows],
        extensions={"refusals": refusals, "invalid_rows": invalid_rows, "plan": summary},
    )


def _row_error(row: dict[str, Any]) -> FieldError:
    """An invalid row as an ``invalid-params`` entry: ``recipients.<index>[.<column>]``."""
    name = f"recipients.{row['line'] - 1}"
    field, reason = row["field"], row["reason"]
    if field == "row":  # the row itself (e.g. a nested value)
        return FieldError(name, reason)
    if field in ("text", "subject"):  # the rendered text or subject, not a column
        return FieldError(name, f"{field}: {reason}")
    return FieldError(f"{name}.{field}", reason)


def _http_words(text: str) -> str:
    for cli, body in _CLI_WORDS.items():
        text = text.replace(cli, body)
    return text
