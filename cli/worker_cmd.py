"""``connectus worker``: run the supervised worker processes."""

from __future__ import annotations

import typer

from cli.common import EXIT_INVALID, err_console


def worker(
    ctx: typer.Context,
    processes: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes [WORKER_PROCESSES]."
    ),
    threads: int | None = typer.Option(
        None, min=1, max=512, help="Threads per process [WORKER_THREADS]."
    ),
    queues: str | None = typer.Option(None, help="Comma-separated queues (default: all)."),
) -> None:
    """Run worker processes; a process that dies is respawned. SIGTERM drains."""
    from core.logging import configure_logging
    from worker.supervisor import Supervisor, worker_command

    settings = ctx.obj()
    settings.require_connectus_credentials()
    chosen = queues.split(",") if queues else list(settings.queues)
    unknown = sorted(set(chosen) - set(settings.queues))
    if unknown:
        err_console.print(
            f"[red]error:[/red] --queues: unknown queue(s) {unknown};"
            f" known: {list(settings.queues)}"
        )
        raise typer.Exit(EXIT_INVALID)
    configure_logging(level=settings.log_level, json=settings.log_json)
    supervisor = Supervisor(
        processes=processes or settings.worker_processes,
        command=worker_command(threads=threads or settings.worker_threads, queues=chosen),
        grace_s=settings.worker_shutdown_grace_s,
    )
    supervisor.install_signal_handlers()
    raise typer.Exit(supervisor.run())
