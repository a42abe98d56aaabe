"""The operator console at ``/ui``: overview, campaigns, search, dead letters, review and
opt-outs, rendered on the server (Jinja2) with htmx refreshes; see docs/console.md.

:func:`build_console` is None when ``CONSOLE_USERS`` is unset: no console is served.
"""

from __future__ import annotations

import redis
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectus_worker.config import Settings
from connectus_worker.config.console_users import parse_users
from connectus_worker.service.console.app import Pages, guarded
from connectus_worker.service.console.auth import Sessions
from connectus_worker.service.console.ops import Ops
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
    pages = Pages(settings, client, sessions)
    ops = Ops(settings, client, sessions)
    get, post = ["GET"], ["POST"]
    routes = [
        Route("/login", guarded(pages.login_form), methods=get),
        Route("/login", guarded(pages.login), methods=post),
        Route("/logout", guarded(pages.logout), methods=post),
        Route("/", guarded(pages.overview), methods=get),
        Route("/live/overview", guarded(pages.overview_live), methods=get),
        Route("/campaigns", guarded(pages.campaign_list), methods=get),
        Route("/campaigns/{campaign_id}", guarded(pages.campaign), methods=get),
        Route("/campaigns/{campaign_id}/live", guarded(pages.campaign_live), methods=get),
        Route("/campaigns/{campaign_id}/report.csv", guarded(pages.campaign_report), methods=get),
        Route("/campaigns/{campaign_id}/{action}", guarded(pages.campaign_action), methods=post),
        Route("/search", guarded(ops.search), methods=["GET", "POST"]),
        Route("/deadletters", guarded(ops.dead_letters), methods=get),
        Route("/deadletters/{action}", guarded(ops.dead_letter_action), methods=post),
        Route("/review", guarded(ops.review), methods=get),
        Route("/review/{action}", guarded(ops.review_action), methods=post),
        Route("/optouts", guarded(ops.optouts), methods=get),
        Route("/optouts/lookup", guarded(ops.optout_lookup), methods=post),
        Route("/optouts/{action}", guarded(ops.optout_change), methods=post),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(routes=routes)
