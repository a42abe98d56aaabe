"""The console's routes: login, overview and campaigns (:mod:`service.console.ops`: search,
dead letters, review and opt-outs). Mounted at ``/ui`` by :func:`service.app.build_app`.

Every handler reads through the functions the CLI and the HTTP control
endpoints use (:class:`producers.campaign_control.CampaignControl`,
:mod:`service.console.overview`...); no Redis code of its own. Handlers that
touch Redis run in the thread pool. Campaigns are seen across tenants: the
console is the operators' view, not a tenant's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import redis
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from connectus_worker.campaign.store import CampaignStore
from connectus_worker.config import Settings
from connectus_worker.config.console_users import Operator, verify_password
from connectus_worker.ledger.keys import Keys
from connectus_worker.logging.redaction import mask_email, mask_phone, redact_text
from connectus_worker.producers.campaign_control import (
    REPORT_COLUMNS,
    CampaignControl,
    CampaignNotFound,
    CampaignStateError,
)
from connectus_worker.service.console.auth import Refused, Sessions, new_csrf
from connectus_worker.service.console.campaign_chart import sends_over_time
from connectus_worker.service.console.overview import read_overview
from connectus_worker.service.console.views import back, page, refused

log = structlog.get_logger("connectus_worker.service.console")
ACTIONS = ("pause", "resume", "cancel")


async def answer_refused(request: Request, exc: Exception) -> Response:
    """:class:`Refused` as a page (401: to the login form)."""
    assert isinstance(exc, Refused)
    if exc.status == 401 and request.headers.get("HX-Request"):
        # An htmx refresh after the session ended: the whole page goes to login.
        return Response(status_code=204, headers={"HX-Redirect": "/ui/login"})
    if exc.status == 401 and request.method == "GET":
        return back("/login")
    return refused(exc.status, exc.reason)


class ConsoleCore:
    """Shared by the handlers: settings, Redis, sessions, the campaign control."""

    def __init__(self, settings: Settings, client: redis.Redis, sessions: Sessions) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.key_prefix)
        self.sessions = sessions
        store = CampaignStore(client, self.keys, ttl_s=settings.campaign_ttl_s,
                              job_ttl_s=settings.job_ttl_s)  # fmt: skip
        self.campaigns = CampaignControl(store, tenant=None)

    async def view(self, request: Request, name: str, read: Callable[[], dict[str, Any]],
                   status: int = 200) -> Response:  # fmt: skip
        """A page for the logged-in operator: ``read()`` runs in the thread pool."""
        operator = self.sessions.operator(request)
        session = self.sessions.read(request)
        context = await run_in_threadpool(read)
        return page(name, status, operator=operator, csrf=session.csrf if session else "",
                    message=request.query_params.get("msg", ""), path=request.url.path,
                    **context)  # fmt: skip

    def audit(self, operator: Operator | None, action: str, **fields: Any) -> None:
        log.info("console action", operator=operator.name if operator else None,
                 action=action, **fields)  # fmt: skip


class Pages(ConsoleCore):
    # -- login ----------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request, 200, "")

    def _login_page(self, request: Request, status: int, error: str) -> Response:
        csrf = new_csrf()
        response = page("login.html", status, csrf=csrf, error=error, operator=None)
        self.sessions.write(request, response, None, csrf)
        return response

    async def login(self, request: Request) -> Response:
        _, fields, _ = await self.sessions.form(request, act=False)
        name, password = fields.get("username", ""), fields.get("password", "")
        operator = self.sessions.users.get(name)
        ok = operator is not None and await run_in_threadpool(
            verify_password, password, operator.password_hash
        )
        if not ok or operator is None:
            log.warning("console login refused", operator=name[:64])
            return self._login_page(request, 401, "Wrong name or password.")
        self.audit(operator, "login")
        response = back("/")
        self.sessions.write(request, response, operator, new_csrf())
        return response

    async def logout(self, request: Request) -> Response:
        operator, _, _ = await self.sessions.form(request, act=False)
        self.audit(operator, "logout")
        response = back("/login")
        self.sessions.clear(response)
        return response

    # -- overview -------------------------------------------------------------------

    async def overview(self, request: Request, *, live: bool = False) -> Response:
        """``live``: the body alone, for htmx's refresh every few seconds."""
        name = "overview_live.html" if live else "overview.html"
        return await self.view(
            request, name, lambda: {"o": read_overview(self.client, self.keys, self.settings)}
        )

    # -- campaigns ------------------------------------------------------------------

    async def campaign_list(self, request: Request) -> Response:
        def read() -> dict[str, Any]:
            recent = self.campaigns.store.recent(limit=50)
            return {"campaigns": [self.campaigns.status(c.campaign_id).to_json()
                                  | {"tenant": c.tenant} for c in recent]}  # fmt: skip

        return await self.view(request, "campaigns.html", read)

    async def campaign(self, request: Request, *, live: bool = False) -> Response:
        """The campaign's page, its chart drawn on load; ``live``: the part htmx refreshes."""
        campaign_id = request.path_params["campaign_id"]

        def read() -> dict[str, Any]:
            try:
                status = self.campaigns.status(campaign_id)
            except CampaignNotFound as exc:
                raise Refused(404, str(exc)) from exc
            context: dict[str, Any] = {
                "c": status.to_json() | {"tenant": status.campaign.tenant},
                "actions": ACTIONS,
            }
            if not live:
                context["sends"], width = sends_over_time(self.client, self.keys, campaign_id)
                context["bar"] = "minute" if width == 60 else f"{width // 60} minutes"
            return context

        return await self.view(request, "campaign_live.html" if live else "campaign.html", read)

    async def campaign_action(self, request: Request) -> Response:
        operator, _, _ = await self.sessions.form(request, act=True)
        campaign_id, action = request.path_params["campaign_id"], request.path_params["action"]
        if action not in ACTIONS:
            raise Refused(404, f"no action {action!r}")

        def act() -> str:
            try:
                getattr(self.campaigns, action)(campaign_id)
            except CampaignNotFound as exc:
                raise Refused(404, str(exc)) from exc
            except CampaignStateError as exc:
                return str(exc)
            return f"{action}: done, the campaign is now {self.campaigns.get(campaign_id).state}"

        message = await run_in_threadpool(act)
        self.audit(operator, f"campaign {action}", campaign_id=campaign_id, result=message)
        return back(f"/campaigns/{campaign_id}", msg=message)

    async def campaign_report(self, request: Request) -> Response:
        """The CSV report of ``connectus campaign report``, recipients masked."""
        self.sessions.operator(request)
        campaign_id = request.path_params["campaign_id"]
        try:
            await run_in_threadpool(self.campaigns.get, campaign_id)
        except CampaignNotFound as exc:
            raise Refused(404, str(exc)) from exc
        rows = self.campaigns.report_rows(campaign_id)

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS)
            writer.writeheader()
            for row in rows:
                recipient = row["recipient"]
                row["recipient"] = (mask_email(recipient) if "@" in recipient
                                    else mask_phone(recipient))  # fmt: skip
                row["error"] = redact_text(row["error"])
                writer.writerow(row)
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        # A sync iterator: Starlette runs each step in the thread pool.
        return StreamingResponse(lines(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"',
            "Cache-Control": "no-store"})  # fmt: skip
