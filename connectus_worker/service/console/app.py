"""The console's handlers: login, overview, campaigns, search, dead letters, review, opt-outs.

Every handler goes through what the CLI uses (:class:`producers.campaign_control.
CampaignControl`, :class:`ledger.deadletters.DeadLetters` as ``connectus dlq``: an OTP, a
poison entry or an expired job is never replayed; :mod:`ledger.review`;
:mod:`producers.optout`, recorded with the source ``console:<operator>``); no Redis code
of its own. Handlers that touch Redis run in the thread pool. Campaigns are seen across
tenants: the console is the operators' view. Phone numbers and addresses are shown
masked; a number to add, remove or look up is typed in full and never shown back.
"""

from __future__ import annotations

import csv
import io
import time
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
from connectus_worker.domain.expiry import AgeLimits
from connectus_worker.domain.validation import InvalidInput, normalize_number
from connectus_worker.ledger.deadletters import DeadLetters, Filter, parse_duration
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.lookup import find_jobs, job_history
from connectus_worker.ledger.review import drop, held, resend
from connectus_worker.logging.redaction import mask_email, mask_phone, redact_text
from connectus_worker.producers.campaign_control import (
    REPORT_COLUMNS,
    CampaignControl,
    CampaignNotFound,
    CampaignStateError,
)
from connectus_worker.producers.optout import change, history, is_opted_out, list_opted_out
from connectus_worker.service.console.auth import Refused, Sessions, new_csrf
from connectus_worker.service.console.overview import read_overview, sends_over_time
from connectus_worker.service.console.views import back, page, refused

log = structlog.get_logger("connectus_worker.service.console")
ACTIONS = ("pause", "resume", "cancel")
#: Rows shown on a dead-letter, review or opt-out page.
PAGE_ROWS = 100


async def answer_refused(request: Request, exc: Exception) -> Response:
    """:class:`Refused` as a page (401: to the login form)."""
    assert isinstance(exc, Refused)
    if exc.status == 401 and request.headers.get("HX-Request"):
        # An htmx refresh after the session ended: the whole page goes to login.
        return Response(status_code=204, headers={"HX-Redirect": "/ui/login"})
    if exc.status == 401 and request.method == "GET":
        return back("/login")
    return refused(exc.status, exc.reason)


class Console:
    """The handlers, over the settings, Redis, the sessions and the stores the CLI uses."""

    def __init__(self, settings: Settings, client: redis.Redis, sessions: Sessions) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.key_prefix)
        self.sessions = sessions
        store = CampaignStore(client, self.keys, ttl_s=settings.campaign_ttl_s,
                              job_ttl_s=settings.job_ttl_s)  # fmt: skip
        self.campaigns = CampaignControl(store, tenant=None)
        self.jobs = JobStore(client, self.keys, ttl_s=settings.job_ttl_s)
        limits = AgeLimits(settings.max_message_age_s, settings.otp_max_age_s)
        self.letters = DeadLetters(self.jobs, limits=limits)

    async def view(
        self, request: Request, name: str, read: Callable[[], dict[str, Any]]
    ) -> Response:
        """A page for the logged-in operator: ``read()`` runs in the thread pool."""
        session = self.sessions.logged_in(request)
        context = await run_in_threadpool(read)
        return page(name, operator=session.operator, csrf=session.csrf,
                    message=request.query_params.get("msg", ""), path=request.url.path,
                    **context)  # fmt: skip

    def audit(self, operator: Operator | None, action: str, **fields: Any) -> None:
        log.info("console action", operator=operator.name if operator else None,
                 action=action, **fields)  # fmt: skip

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
        self.sessions.logged_in(request)
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

    # -- search -----------------------------------------------------------------------

    async def search(self, request: Request) -> Response:
        """GET ``?q=`` (the links to a job id) or the form's POST: a recipient typed in
        full then stays out of URLs, browser history and proxy logs."""
        query = request.query_params.get("q", "")
        if request.method == "POST":
            _, fields, _ = await self.sessions.form(request, act=False)
            query = fields.get("q", "")
        query = query.strip()[:320]

        def read() -> dict[str, Any]:
            if not query:
                return {"q": "", "jobs": [], "searched": False}
            try:
                ids = find_jobs(self.client, self.keys, query,
                                content_hash_key=self.settings.content_key,
                                default_region=self.settings.default_region)  # fmt: skip
            except InvalidInput as exc:
                return {"q": query, "jobs": [], "searched": False, "error": exc.reason}
            jobs = [h for h in (job_history(self.client, self.keys, i) for i in ids) if h]
            return {"q": query, "jobs": jobs, "searched": True}

        return await self.view(request, "search.html", read)

    # -- dead letters ---------------------------------------------------------------------

    def _filter(self, fields: Any) -> Filter:
        try:
            return Filter(
                queue=fields.get("queue") or None,
                reason=fields.get("reason") or None,
                older_than_s=parse_duration(fields["older"]) if fields.get("older") else None,
                newer_than_s=parse_duration(fields["newer"]) if fields.get("newer") else None,
            )
        except ValueError as exc:
            raise Refused(400, f"older/newer: {exc}") from exc

    async def dead_letters(self, request: Request) -> Response:
        fields = request.query_params
        where = self._filter(fields)

        def read() -> dict[str, Any]:
            rows = [e.as_dict() for e in self.letters.find(where, limit=PAGE_ROWS + 1)]
            shown = {k: fields.get(k, "") for k in ("queue", "reason", "older", "newer")}
            return {"rows": rows[:PAGE_ROWS], "more": len(rows) > PAGE_ROWS,
                    "queues": self.settings.queues, "f": shown}  # fmt: skip

        return await self.view(request, "deadletters.html", read)

    async def dead_letter_action(self, request: Request) -> Response:
        """``replay`` or ``purge`` the selected ids, or with ``all=1`` every match of the
        filter fields (as ``connectus dlq replay|purge --all``)."""
        operator, fields, ids = await self.sessions.form(request, act=True)
        action = request.path_params["action"]
        if action not in ("replay", "purge"):
            raise Refused(404, f"no action {action!r}")
        every = fields.get("all") == "1"
        where = self._filter(fields)
        if not every and not ids:
            raise Refused(400, "job_id: select at least one dead letter (or act on all)")

        def act() -> str:
            letters = self.letters
            if every:
                entries = letters.find(where)
            else:
                found = [letters.get(i) for i in ids[:1000]]
                entries = [e for e in found if e is not None]
            if action == "purge":
                return f"purged {letters.purge([e.member for e in entries])} dead letter(s)"
            results = letters.replay(entries)
            done = sum(r["result"] == "replayed" for r in results)
            refusals = {r["error"] for r in results if r.get("error")}
            why = f"; refused: {'; '.join(sorted(refusals))}" if refusals else ""
            return f"replayed {done} of {len(results)}{why}"

        message = await run_in_threadpool(act)
        self.audit(operator, f"dead letters {action}", all=every, ids=len(ids), result=message)
        query = {k: fields.get(k, "") for k in ("queue", "reason", "older", "newer")}
        return back("/deadletters", msg=message, **{k: v for k, v in query.items() if v})

    # -- review ---------------------------------------------------------------------------

    async def review(self, request: Request) -> Response:
        def read() -> dict[str, Any]:
            return {"rows": held(self.jobs, limit=PAGE_ROWS)}

        return await self.view(request, "review.html", read)

    async def review_action(self, request: Request) -> Response:
        operator, _, ids = await self.sessions.form(request, act=True)
        action = request.path_params["action"]
        decide = {"resend": resend, "drop": drop}.get(action)
        if decide is None or len(ids) != 1:
            raise Refused(400, "job_id: one job, and the action resend or drop")
        result = await run_in_threadpool(decide, self.jobs, ids[0])
        self.audit(operator, f"review {action}", job_id=ids[0], result=result)
        return back("/review", msg=f"{ids[0]}: {result}")

    # -- opt-outs -------------------------------------------------------------------------

    async def optouts(self, request: Request) -> Response:
        raw_cursor = request.query_params.get("cursor", "0")
        cursor = int(raw_cursor) if raw_cursor.isdigit() else 0

        def read() -> dict[str, Any]:
            next_cursor, numbers = list_opted_out(self.client, self.keys, cursor=cursor,
                                                  count=PAGE_ROWS)  # fmt: skip
            return {"numbers": [mask_phone(n) for n in numbers], "next_cursor": next_cursor}

        return await self.view(request, "optouts.html", read)

    async def optout_lookup(self, request: Request) -> Response:
        """A number's state and history: a POST, so the number never sits in a URL or log."""
        _, fields, _ = await self.sessions.form(request, act=False)
        self.sessions.logged_in(request)
        digits = self._number(fields)

        def read() -> dict[str, Any]:
            changes = history(self.client, self.keys, digits, hash_key=self.settings.content_key)
            return {"numbers": [], "next_cursor": 0, "looked_up": {
                "number": mask_phone(digits), "opted_out": is_opted_out(self.client, self.keys,
                                                                        digits),
                "history": changes}}  # fmt: skip

        return await self.view(request, "optouts.html", read)

    async def optout_change(self, request: Request) -> Response:
        operator, fields, _ = await self.sessions.form(request, act=True)
        action = request.path_params["action"]
        if action not in ("add", "remove"):
            raise Refused(404, f"no action {action!r}")
        digits = self._number(fields)
        assert operator is not None
        changed = await run_in_threadpool(
            lambda: change(self.client, self.keys, digits, "out" if action == "add" else "in",
                           source=f"console:{operator.name}", now_ms=int(time.time() * 1000),
                           hash_key=self.settings.content_key)
        )  # fmt: skip
        self.audit(operator, f"opt-out {action}", number=mask_phone(digits), changed=changed)
        verb = "opted out" if action == "add" else "opted back in"
        done = verb if changed else f"already {verb}"
        return back("/optouts", msg=f"{mask_phone(digits)}: {done}")

    def _number(self, fields: dict[str, str]) -> str:
        try:
            return normalize_number(fields.get("number", ""), field="number",
                                    default_region=self.settings.default_region)  # fmt: skip
        except InvalidInput as exc:
            raise Refused(400, f"number: {exc.reason}") from exc
