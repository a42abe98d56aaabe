"""The console's search, dead letters, review and opt-outs pages and their actions.

Dead letters go through :class:`ledger.deadletters.DeadLetters`, as ``connectus dlq``
does (an OTP, a poison entry or a job past its expiry is never replayed; the
refusal says why); review through :mod:`ledger.review`, as ``connectus review``;
opt-outs through :mod:`producers.optout`, recorded with the source
``console:<operator>``. Phone numbers and addresses are shown masked; a
number to add, remove or look up is typed in full and never shown back.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from connectus_worker.config import Settings
from connectus_worker.domain.expiry import AgeLimits
from connectus_worker.domain.validation import InvalidInput, normalize_number
from connectus_worker.ledger.deadletters import DeadLetters, Filter, parse_duration
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.lookup import find_jobs, job_history
from connectus_worker.ledger.review import drop, held, resend
from connectus_worker.logging.redaction import mask_phone
from connectus_worker.producers.optout import change, history, is_opted_out, list_opted_out
from connectus_worker.service.console.app import ConsoleCore
from connectus_worker.service.console.auth import Refused, Sessions
from connectus_worker.service.console.views import back

#: Rows shown on a dead-letter, review or opt-out page.
PAGE_ROWS = 100


class Ops(ConsoleCore):
    def __init__(self, settings: Settings, client: redis.Redis, sessions: Sessions) -> None:
        super().__init__(settings, client, sessions)
        self.jobs = JobStore(client, self.keys, ttl_s=settings.job_ttl_s)
        limits = AgeLimits(settings.max_message_age_s, settings.otp_max_age_s)
        self.letters = DeadLetters(self.jobs, limits=limits)

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
        self.sessions.operator(request)
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
