"""Running the service: :func:`run` in the foreground.

Tests and tools run it in a thread with :class:`devtools.service_server.ServiceServer`
(a checkout's development tooling, not installed with the package).
"""

from __future__ import annotations

import importlib.util

import uvicorn
from starlette.applications import Starlette

from connectus_worker.config import Settings
from connectus_worker.service.app import build_app

#: In-flight requests get this long to finish on SIGTERM, in s (k8s grace is 30 s).
SHUTDOWN_GRACE_S = 20


def uvicorn_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """uvloop and httptools when installed; our logging, not uvicorn's access log."""
    use_uvloop = importlib.util.find_spec("uvloop") is not None
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if use_uvloop else "asyncio",
        http=http,
        access_log=False,  # the middleware logs each request, without the query (tokens)
        log_config=None,  # keep configure_logging's handlers: JSON and redaction
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        proxy_headers=True,
    )


def run(settings: Settings, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn drains in-flight requests first)."""
    uvicorn.Server(uvicorn_config(build_app(settings), host, port)).run()
