"""Background duties of every worker process, one daemon thread, one tick per
``promote_interval_s`` (s, ``HOUSEKEEPING_INTERVAL_S``); each is harmless in several
processes at once:

- promote due jobs (scheduled, durable retries) from the Redis schedule onto their
  queues, not Dramatiq's delay queues (which can strand them, dramatiq issue 527);
- sweep: a job still ``sending`` after its lease, with no message left, becomes
  ``unknown`` for the reconciler (:mod:`worker.reconcile`, every ``reconcile_interval_s``);
- the campaign pump, the QR session watch, delivery-status polls and balance snapshots;
- maintenance every ``maintenance_interval_s`` on every queue: Dramatiq returns a
  SIGKILLed process's fetched messages only on 0.1% of broker calls by default.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

import redis
import structlog

from connectus_worker.ledger.delivery_status import PendingStatuses
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.transport.broker import ConnectusBroker
from connectus_worker.worker.campaign_messages import ChunkRecovery
from connectus_worker.worker.reconcile import Reconciler

log = structlog.get_logger("connectus_worker.worker.housekeeping")

Duty = Callable[[], object]


class Housekeeper(threading.Thread):
    """A daemon thread; ``stop()`` ends it at the next tick.

    ``ticks`` run every tick (the campaign pump, the QR session watches); ``polls``
    every ``status_interval_s`` (s), the first after one interval; maintenance (and
    ``chunk_recovery``) at start-up and every ``maintenance_interval_s``.
    """

    def __init__(
        self,
        *,
        store: JobStore,
        broker: ConnectusBroker,
        queues: Iterable[str],
        promote_interval_s: float,
        maintenance_interval_s: float,
        reconciler: Reconciler,
        reconcile_interval_s: float,
        ticks: Sequence[Duty],
        polls: Sequence[Duty],
        pending_statuses: PendingStatuses,
        chunk_recovery: ChunkRecovery,
        batch: int = 500,
        status_interval_s: float = 5.0,
    ) -> None:
        super().__init__(name="housekeeper", daemon=True)
        self.store, self.broker, self.queues, self.batch = store, broker, tuple(queues), batch
        self.promote_interval_s = promote_interval_s
        self.maintenance_interval_s = maintenance_interval_s
        self.reconciler, self.reconcile_interval_s = reconciler, reconcile_interval_s
        self.ticks, self.polls, self.status_interval_s = ticks, polls, status_interval_s
        self.pending_statuses = pending_statuses
        self.chunk_recovery = chunk_recovery
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        since_maintenance = self.maintenance_interval_s  # at start-up
        since_reconcile = since_status = 0.0
        while not self._stop_event.is_set():
            try:
                while self.store.promote_due(limit=self.batch) >= self.batch:
                    pass
                self.store.sweep_expired_leases(limit=self.batch)
                if since_maintenance >= self.maintenance_interval_s:
                    since_maintenance = 0.0
                    for queue in self.queues:  # messages held by dead workers
                        self.broker.maintain(queue)
                    self.chunk_recovery.run_once()
                if since_reconcile >= self.reconcile_interval_s:
                    since_reconcile = 0.0
                    self.reconciler.run_once()
                for duty in self.ticks:
                    duty()
                if since_status >= self.status_interval_s:
                    since_status = 0.0
                    for duty in self.polls:
                        duty()
                    # Status webhooks that came before their send was recorded.
                    matched, expired = self.pending_statuses.match(epoch_ms())
                    if matched or expired:
                        log.info("delivery_status.pending_matched", matched=matched,
                                 expired=expired)  # fmt: skip
            except redis.RedisError as exc:
                log.warning("housekeeping.redis_error", error=str(exc))
            except Exception:
                # This thread must outlive any single bad pass.
                log.exception("housekeeping.failed")
            self._stop_event.wait(self.promote_interval_s)
            since_maintenance += self.promote_interval_s
            since_reconcile += self.promote_interval_s
            since_status += self.promote_interval_s
