"""``connectus serve``: the HTTP service (intake, webhooks, metrics, health)."""

from __future__ import annotations

import typer


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 in a container)."),
    port: int = typer.Option(8080, min=1, max=65535, help="TCP port to listen on."),
) -> None:
    """Serve the intake, the Connectus webhooks, /metrics, /healthz and /readyz."""
    import connectus_worker.tracing as tracing
    from connectus_worker.logging import configure_logging
    from connectus_worker.service.server import (
        run,  # uvicorn is imported only when the command runs
    )

    settings = ctx.obj()
    settings.require_service_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    tracing.start("connectus-service")  # OTEL_* (README, "Tracing"); off without them
    run(settings, host=host, port=port)
