"""Campaigns over HTTP: ``POST /v1/campaigns``, ``GET /v1/campaigns/{campaign_id}`` and
``POST .../pause|resume|cancel``.

``POST`` has the message intake's flow (:mod:`service.intake`), then
:class:`producers.campaigns.CampaignProducer`. The ``Idempotency-Key`` is also the
campaign's own: resubmitted after the HTTP answer expired, it answers the first campaign
with ``created: false``. The cost is checked against the balances the workers publish
(:mod:`worker.balance_snapshot`): the service holds no Connectus credentials. Control is
idempotent by its result (the state asked for: 200); a state that refuses it is a 409.
"""

import functools
from collections.abc import Mapping
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from connectus_worker.campaign.model import CampaignState
from connectus_worker.campaign.options import CampaignOptions, invalid_options
from connectus_worker.campaign.store import CampaignConflict
from connectus_worker.domain.validation import FieldError, InvalidInput
from connectus_worker.producers.campaign_control import (
    CampaignControl,
    CampaignNotFound,
    CampaignStateError,
    CampaignStatusOut,
)
from connectus_worker.producers.campaign_plan import CampaignPlan
from connectus_worker.producers.campaigns import CampaignProducer, CampaignRefused
from connectus_worker.service.auth import BearerAuth
from connectus_worker.service.body import json_body
from connectus_worker.service.campaign_schemas import CampaignAccepted, CampaignRequest
from connectus_worker.service.idempotency import (
    IDEMPOTENCY_HEADER,
    HttpIdempotency,
    idempotency_key,
    key_reused,
)
from connectus_worker.service.openapi import (
    ACCEPTED_HEADERS,
    CONTROL_ANSWERS,
    CampaignId,
    body,
    ok,
)
from connectus_worker.service.openapi import problems as answers
from connectus_worker.service.problems import ProblemError, found
from connectus_worker.service.schemas import CampaignControlled

log = structlog.get_logger("connectus_worker.service.campaigns")

#: Producer field names that are named differently in the HTTP body.
_FIELD_NAMES = {"src_email": "src", "idempotency_key": IDEMPOTENCY_HEADER}
#: The producer's refusals speak the CLI's language; the body's fields are named instead.
_CLI_WORDS = {"--skip-invalid": '"skip_invalid": true', "--force": '"force": true'}
S = CampaignState
#: Each action, its summary, and the states in which it has already happened (a repeat).
_ACTIONS = {
    "pause": ("Pause a campaign: nothing more is released or sent", {S.PAUSED}),
    "resume": ("Resume a paused or late campaign", {S.RUNNING, S.WINDOW, S.SCHEDULED}),
    "cancel": ("Cancel a campaign: nothing more is sent", {S.CANCELLED}),
}


def campaign_routes(
    app: FastAPI,
    producers: Mapping[str, CampaignProducer],
    controls: Mapping[str, CampaignControl],
    auth: BearerAuth,
    idempotency: HttpIdempotency,
    *,
    max_body_bytes: int,
) -> None:
    """``producers`` and ``controls``: one of each per tenant (:mod:`config.tenants`)."""
    Tenant = Annotated[str, Depends(auth)]

    def accept(producer: CampaignProducer, data: dict[str, Any], key: str | None) -> Response:
        try:
            campaign = CampaignRequest.model_validate(data)
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
            raise key_reused("for a different campaign") from exc
        plan = accepted.plan.to_json()
        log.info("campaign accepted", campaign_id=accepted.campaign_id, created=accepted.created,
                 kind=campaign.kind, recipients=plan["valid"], invalid=plan["invalid"])  # fmt: skip
        plan["refusals"] = [_http_words(text) for text in plan["refusals"]]
        return JSONResponse(
            {"campaign_id": accepted.campaign_id, "created": accepted.created, "plan": plan},
            status_code=202,
            headers={"Location": f"/v1/campaigns/{accepted.campaign_id}"},
        )

    @app.post("/v1/campaigns", status_code=202, operation_id="createCampaign",
                 summary="Accept a campaign: one template, a list of recipients",
                 description="Checked like `connectus campaign send` (no balance check: the "
                 "service holds no Connectus credentials). Lists larger than "
                 "INTAKE_MAX_BODY_BYTES go through the CLI or CampaignProducer.",
                 response_model=CampaignAccepted,
                 responses={202: ok("Queued or accepted; a replay carries "
                                    "Idempotent-Replayed: true", ACCEPTED_HEADERS),
                            **answers(400, 401, 409, 413, 415, 503),
                            **answers(422, model="CampaignProblem")},
                 openapi_extra=body("CampaignRequest"))  # fmt: skip
    async def post_campaign(
        tenant: Tenant,
        key: Annotated[str | None, Depends(idempotency_key)],
        data: Annotated[dict[str, Any], Depends(json_body(max_body_bytes))],
    ) -> Response:
        run = functools.partial(accept, producers[tenant], data, key)
        request_print = {"method": "POST", "path": "/v1/campaigns", "body": data}
        return await idempotency.run(tenant, key, request_print, run)

    @app.get("/v1/campaigns/{campaign_id}", operation_id="getCampaign",
                summary="A campaign's state and progress: recipients by state, rate, ETA",
                response_model=CampaignStatusOut,
                responses={200: ok("The campaign's status"), **answers(401, 404, 503)})  # fmt: skip
    def get_campaign(campaign_id: CampaignId, tenant: Tenant) -> Response:
        status = found(controls[tenant].status, campaign_id, CampaignNotFound, "campaign")
        return JSONResponse(status.to_json())

    def move(action: str, done: set[CampaignState]) -> Any:
        def act(campaign_id: CampaignId, tenant: Tenant) -> Response:
            control = controls[tenant]
            campaign = found(control.get, campaign_id, CampaignNotFound, "campaign")
            repeat = campaign.state in done
            if not repeat:
                try:
                    getattr(control, action)(campaign_id)
                except CampaignNotFound as exc:
                    raise ProblemError(404, str(exc)) from exc
                except CampaignStateError as exc:
                    # Another caller may have made the same move in between: still a success.
                    if control.get(campaign_id).state not in done:
                        raise ProblemError(409, str(exc)) from exc
            state = control.get(campaign_id).state.value
            log.info("campaign control", campaign_id=campaign_id, action=action, state=state,
                     repeat=repeat)  # fmt: skip
            return JSONResponse({"campaign_id": campaign_id, "action": action, "state": state})

        return act

    for action, (summary, done) in _ACTIONS.items():
        app.add_api_route(f"/v1/campaigns/{{campaign_id}}/{action}", move(action, done),
                             methods=["POST"], operation_id=f"{action}Campaign",
                             summary=f"{summary} (idempotent)", response_model=CampaignControlled,
                             responses=CONTROL_ANSWERS)  # fmt: skip


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
    for cli, field in _CLI_WORDS.items():
        text = text.replace(cli, field)
    return text
