"""The operator console at ``/ui``: overview, campaigns, search, dead letters, review and
opt-outs, rendered on the server (Jinja2) with htmx refreshes; see docs/console.md.

:func:`build_console` is None when ``CONSOLE_USERS`` is unset: no console is served.
"""

from __future__ import annotations

from functools import partial

import redis
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectus_worker.config import Settings
from connectus_worker.config.console_users import parse_users
from connectus_worker.service.console.app import Console, answer_refused
from connectus_worker.service.console.auth import Refused, Sessions
from connectus_worker.service.console.views import STATIC


def build_console(settings: Settings, client: redis.Redis) -> Starlette | None:
    """The console's ASGI app (mounted at ``/ui``), or None without ``CONSOLE_USERS``."""
    if settings.console_users is None or settings.console_secret_key is None:
        return None
    sessions = Sessions(
        parse_users(settings.console_users.get_secret_value()),
        settings.console_secret_key.get_secret_value(),
        ttl_s=settings.console_session_ttl_s,
    )
    pages = Console(settings, client, sessions)
    get, post = ["GET"], ["POST"]
    routes = [
        Route("/login", pages.login_form, methods=get),
        Route("/login", pages.login, methods=post),
        Route("/logout", pages.logout, methods=post),
        Route("/", pages.overview, methods=get),
        Route("/live/overview", partial(pages.overview, live=True), methods=get),
        Route("/campaigns", pages.campaign_list, methods=get),
        Route("/campaigns/{campaign_id}", pages.campaign, methods=get),
        Route("/campaigns/{campaign_id}/live", partial(pages.campaign, live=True), methods=get),
        Route("/campaigns/{campaign_id}/report.csv", pages.campaign_report, methods=get),
        Route("/campaigns/{campaign_id}/{action}", pages.campaign_action, methods=post),
        Route("/search", pages.search, methods=["GET", "POST"]),
        Route("/deadletters", pages.dead_letters, methods=get),
        Route("/deadletters/{action}", pages.dead_letter_action, methods=post),
        Route("/review", pages.review, methods=get),
        Route("/review/{action}", pages.review_action, methods=post),
        Route("/optouts", pages.optouts, methods=get),
        Route("/optouts/lookup", pages.optout_lookup, methods=post),
        Route("/optouts/{action}", pages.optout_change, methods=post),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={Refused: answer_refused})
