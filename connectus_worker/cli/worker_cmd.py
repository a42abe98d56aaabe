"""``connectus worker``: run the supervised worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from connectus_worker.cli.common import EXIT_CONFIG, EXIT_INVALID, console, fail


def worker(
    ctx: typer.Context,
    processes: int | None = typer.Option(None, min=1, max=64,
                                         help="Worker processes [WORKER_PROCESSES]."),
    threads: int | None = typer.Option(None, min=1, max=512,
                                       help="Threads per process [WORKER_THREADS]."),
    queues: str | None = typer.Option(None, help="Comma-separated queues (default: all)."),
) -> None:  # fmt: skip
    """Run worker processes; a process that dies is respawned. SIGTERM drains."""
    from prometheus_client.multiprocess import mark_process_dead

    from connectus_worker.logging import configure_logging
    from connectus_worker.worker.health import start_supervisor_endpoint
    from connectus_worker.worker.metrics import (
        MULTIPROC_ENV,
        prepare_multiproc_dir,
        remove_multiproc_dir,
    )
    from connectus_worker.worker.supervisor import Supervisor, worker_command

    settings = ctx.obj()
    settings.require_connectus_credentials()
    chosen = queues.split(",") if queues else list(settings.queues)
    unknown = sorted(set(chosen) - set(settings.queues))
    if unknown:
        fail(f"--queues: unknown queue(s) {unknown}; known: {list(settings.queues)}", False,
             code=EXIT_INVALID)  # fmt: skip
    configure_logging(level=settings.log_level, json=settings.log_json)
    # One endpoint per pod: each child writes its counters to files in a
    # per-pod directory (inherited through the environment) and the
    # supervisor merges them at scrape time.
    metrics_dir: Path | None = None

    def mark_dead(pid: int) -> None:
        if metrics_dir is not None:
            # prometheus_client ships this function without annotations
            mark_process_dead(pid, str(metrics_dir))  # type: ignore[no-untyped-call]

    supervisor = Supervisor(
        processes=processes or settings.worker_processes,
        command=worker_command(threads=threads or settings.worker_threads, queues=chosen),
        grace_s=settings.worker_shutdown_grace_s,
        on_exit=mark_dead,
    )
    # Handlers first: from here on a SIGTERM drains and cleans up.
    supervisor.install_signal_handlers()
    given_dir = os.environ.get(MULTIPROC_ENV)
    if settings.worker_metrics_port:
        metrics_dir = prepare_multiproc_dir(given_dir)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    server = None
    try:
        try:
            server = start_supervisor_endpoint(settings, supervisor, metrics_dir)
        except OSError as exc:
            where = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
            console(stderr=True).print(
                f"[red]configuration error:[/red] WORKER_METRICS_PORT: {where}: {exc}"
            )
            raise typer.Exit(EXIT_CONFIG) from exc
        code = supervisor.run()
    finally:
        if server is not None:
            server.stop()
        if metrics_dir is not None and not given_dir:
            remove_multiproc_dir(metrics_dir)
    raise typer.Exit(code)
