"""Control over HTTP: what ``connectus cancel`` and ``connectus campaign pause|resume|cancel``
do, for a caller holding an intake token.

- ``POST /v1/messages/{job_id}/cancel``: a queued, scheduled or retrying job is
  cancelled (never sent). POST, not DELETE: the record stays readable
  (``GET /v1/messages/{job_id}`` shows ``cancelled``); nothing is deleted.
- ``POST /v1/campaigns/{campaign_id}/pause``, ``/resume``, ``/cancel``: the
  campaign's atomic state change (:class:`producers.campaign_control.CampaignControl`).

Each is idempotent by its result, not by a stored answer: asking again for
the state the job or campaign is already in answers 200 with the same body
(``cancel`` of a cancelled job, ``pause`` of a paused campaign, ``resume`` of
a running one). A request the current state refuses (a job already sent, a
finished campaign) is a 409 problem naming the state; an unknown id is a 404.

Tenants: every handler loads what it acts on through :meth:`Control.job_for`
or :meth:`Control.campaign_for`, with the caller's tenant
(:meth:`service.auth.BearerAuth.check`), through that tenant's producer or
campaign control: a job or campaign of another tenant answers 404 there, as
an unknown one does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectus_worker.campaign.model import Campaign, CampaignState
from connectus_worker.domain.models import JobRecord, State
from connectus_worker.producers.api import JobNotFound, Producer
from connectus_worker.producers.campaign_control import (
    CampaignControl,
    CampaignNotFound,
    CampaignStateError,
)
from connectus_worker.service.auth import BearerAuth
from connectus_worker.service.campaigns import CAMPAIGN_ID_PATTERN
from connectus_worker.service.intake import JOB_ID_PATTERN
from connectus_worker.service.openapi import problems
from connectus_worker.service.problems import ProblemError

log = structlog.get_logger("connectus_worker.service.control")

_JOB_ID = re.compile(JOB_ID_PATTERN)
_CAMPAIGN_ID = re.compile(CAMPAIGN_ID_PATTERN)
S = CampaignState
#: The states in which each campaign action has already happened (a repeat answers 200).
_ALREADY: dict[str, frozenset[CampaignState]] = {
    "pause": frozenset({S.PAUSED}),
    "resume": frozenset({S.RUNNING, S.WINDOW, S.SCHEDULED}),
    "cancel": frozenset({S.CANCELLED}),
}


class MessageControlled(BaseModel):
    job_id: str
    state: str = Field(description="The job's state after the call: cancelled")


class CampaignControlled(BaseModel):
    campaign_id: str
    action: str = Field(description="pause, resume or cancel")
    state: str = Field(description="The campaign's state after the call")


def conflict_problems() -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the control routes: 401, 404, 409 (the state refuses it), 503."""
    answers = problems(401, 404, 409, 503)
    answers[409] = {**answers[409], "description": "The current state refuses it (named in "
                    "detail), e.g. a job already sent or a finished campaign"}  # fmt: skip
    return answers


class Control:
    """``producers`` and ``campaigns``: one per tenant, each scoped to its tenant."""

    def __init__(
        self,
        producers: Mapping[str, Producer],
        campaigns: Mapping[str, CampaignControl],
        auth: BearerAuth,
    ) -> None:
        self.producers = producers
        self.campaigns = campaigns
        self.auth = auth

    # -- the tenant check: the caller's tenant's producer or control ----------------

    def job_for(self, tenant: str, job_id: str) -> JobRecord:
        """The job ``tenant`` (the caller's, from its token) may act on; 404 otherwise,
        the same 404 for another tenant's job as for an unknown one."""
        if not _JOB_ID.match(job_id):
            raise ProblemError(404, "no such job")
        try:
            return self.producers[tenant].get_status(job_id)
        except JobNotFound as exc:
            raise ProblemError(404, str(exc)) from exc

    def campaign_for(self, tenant: str, campaign_id: str) -> Campaign:
        """The campaign ``tenant`` may act on; 404 otherwise (another tenant's too)."""
        if not _CAMPAIGN_ID.match(campaign_id):
            raise ProblemError(404, "no such campaign")
        try:
            return self.campaigns[tenant].get(campaign_id)
        except CampaignNotFound as exc:
            raise ProblemError(404, str(exc)) from exc

    # -- handlers -------------------------------------------------------------------

    async def cancel_message(self, request: Request) -> Response:
        scope = self.auth.check(request)
        job_id = request.path_params["job_id"]
        body = await run_in_threadpool(self._cancel_message, scope, job_id)
        return JSONResponse(body)

    def _cancel_message(self, scope: str, job_id: str) -> dict[str, str]:
        self.job_for(scope, job_id)
        answer = self.producers[scope].cancel(job_id)
        if answer == "missing":  # expired between the two reads
            raise ProblemError(404, f"job_id: no job {job_id!r} (unknown, or its record expired)")
        if answer in ("cancelled", f"refused:{State.CANCELLED.value}"):
            log.info("message cancelled", job_id=job_id, repeat=answer != "cancelled")
            return {"job_id": job_id, "state": State.CANCELLED.value}
        state = answer.removeprefix("refused:")
        if state == State.QUEUED.value:  # a v1 bulk recipient: it goes with its chunk
            raise ProblemError(409, "this recipient of a v1 bulk campaign is sent with its "
                               "chunk: cancel its campaign instead")  # fmt: skip
        raise ProblemError(409, f"job {job_id} is {state}: only a queued, scheduled or "
                           "retrying job can be cancelled")  # fmt: skip

    async def pause_campaign(self, request: Request) -> Response:
        return await self._campaign(request, "pause")

    async def resume_campaign(self, request: Request) -> Response:
        return await self._campaign(request, "resume")

    async def cancel_campaign(self, request: Request) -> Response:
        return await self._campaign(request, "cancel")

    async def _campaign(self, request: Request, action: str) -> Response:
        scope = self.auth.check(request)
        campaign_id = request.path_params["campaign_id"]
        body = await run_in_threadpool(self._move, scope, campaign_id, action)
        return JSONResponse(body)

    def _move(self, scope: str, campaign_id: str, action: str) -> dict[str, str]:
        campaign = self.campaign_for(scope, campaign_id)
        control = self.campaigns[scope]
        repeat = campaign.state in _ALREADY[action]
        if not repeat:
            try:
                getattr(control, action)(campaign_id)
            except CampaignNotFound as exc:
                raise ProblemError(404, str(exc)) from exc
            except CampaignStateError as exc:
                # Another caller may have made the same move in between: still a success.
                current = control.get(campaign_id).state
                if current not in _ALREADY[action]:
                    raise ProblemError(409, str(exc)) from exc
        state = control.get(campaign_id).state.value
        log.info("campaign control", campaign_id=campaign_id, action=action, state=state,
                 repeat=repeat)  # fmt: skip
        return {"campaign_id": campaign_id, "action": action, "state": state}
