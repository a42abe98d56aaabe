"""Background duties of every worker process: promote due jobs, recover lost messages.

- **Promote**: scheduled deliveries and durable retries wait in a Redis
  sorted set, not in Dramatiq's delay queues (whose consumer keeps delayed
  messages in memory and can strand them, dramatiq issue 527). Every
  ``promote_interval_s`` (s, ``HOUSEKEEPING_INTERVAL_S``) each process moves
  due ones onto their queues with one atomic script; running it in several
  processes at once is harmless.
- **Sweep**: a job still ``sending`` after its lease, whose worker is gone
  with no message left to bring it back, becomes ``unknown`` (with the
  message copy kept at claim time) for the reconciler.
- **Reconcile**: every ``reconcile_interval_s`` the reconciler (if given)
  settles ``unknown`` jobs by asking Connectus (see :mod:`worker.reconcile`).
- **Campaigns**: the pump (if given) starts due campaigns, keeps their send
  windows and releases their next chunks (see :mod:`worker.campaigns`).
- **Delivery statuses**: campaign messages that no status webhook reported
  within ``CAMPAIGN_STATUS_POLL_AFTER_S`` are looked up (see
  :mod:`worker.campaign_status`). A status webhook that came before its send
  was recorded is applied once it is, every ``status_interval_s`` (see
  :class:`ledger.delivery_status.PendingStatuses`).
- **QR session**: the watch (if given) asks the WhatsApp QR API whether its
  session is paired, every ``QR_STATUS_INTERVAL_S`` from one elected process,
  and pauses or resumes QR sends (see :mod:`worker.qr_session`).
- **Maintenance**: a SIGKILLed process leaves its fetched messages in an
  acks set that only Dramatiq's maintenance step returns to the queue, and
  by default that step runs on 0.1% of broker calls (about 10 minutes to
  recover in a test). Here it runs every ``maintenance_interval_s`` on
  every queue, so recovery takes at most heartbeat timeout + interval. The
  same pass moves back v1 bulk chunk messages that a worker older than this
  version dead-lettered (see :mod:`worker.chunk_recovery`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import redis
import structlog

from connectus_worker.ledger.delivery_status import PendingStatuses
from connectus_worker.ledger.jobs import JobStore, epoch_ms
from connectus_worker.transport.broker import ConnectusBroker
from connectus_worker.worker.balance_snapshot import BalanceSnapshotWriter
from connectus_worker.worker.campaign_status import StatusPoller
from connectus_worker.worker.campaigns import CampaignPump
from connectus_worker.worker.channel_status import ChannelStatusPoller
from connectus_worker.worker.chunk_recovery import ChunkRecovery
from connectus_worker.worker.qr_session import QrSessionWatch
from connectus_worker.worker.reconcile import Reconciler

log = structlog.get_logger("connectus_worker.worker.housekeeping")


class Housekeeper(threading.Thread):
    """A daemon thread; ``stop()`` ends it at the next tick."""

    def __init__(
        self,
        *,
        store: JobStore,
        broker: ConnectusBroker,
        queues: Iterable[str],
        promote_interval_s: float,
        maintenance_interval_s: float = 15.0,
        reconciler: Reconciler | None = None,
        reconcile_interval_s: float = 5.0,
        batch: int = 500,
        pump: CampaignPump | None = None,
        status_poller: StatusPoller | None = None,
        channel_status: ChannelStatusPoller | None = None,
        balance_snapshots: Sequence[BalanceSnapshotWriter] = (),
        status_interval_s: float = 5.0,
        pending_statuses: PendingStatuses | None = None,
        chunk_recovery: ChunkRecovery | None = None,
        qr_sessions: Sequence[QrSessionWatch] = (),
    ) -> None:
        super().__init__(name="housekeeper", daemon=True)
        self.store = store
        self.broker = broker
        self.queues = tuple(queues)
        self.promote_interval_s = promote_interval_s
        self.maintenance_interval_s = maintenance_interval_s
        self.batch = batch
        self.reconciler = reconciler
        self.reconcile_interval_s = reconcile_interval_s
        self.pump = pump
        self.status_poller = status_poller
        self.channel_status = channel_status
        # One per Connectus account (worker.accounts).
        self.balance_snapshots = balance_snapshots
        self.status_interval_s = status_interval_s
        self.pending_statuses = pending_statuses
        self.chunk_recovery = chunk_recovery
        self.qr_sessions = qr_sessions
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        # Run maintenance once at start-up; reconcile after one interval.
        since_maintenance = self.maintenance_interval_s
        since_reconcile = since_status = 0.0
        while not self._stop_event.is_set():
            try:
                while self.store.promote_due(limit=self.batch) >= self.batch:
                    pass
                self.store.sweep_expired_leases(limit=self.batch)
                if self.pump is not None:
                    self.pump.tick()
                if since_maintenance >= self.maintenance_interval_s:
                    self.run_maintenance()
                    if self.chunk_recovery is not None:
                        self.chunk_recovery.run_once()
                    since_maintenance = 0.0
                if self.reconciler is not None and since_reconcile >= self.reconcile_interval_s:
                    since_reconcile = 0.0
                    self.reconciler.run_once()
                for qr_session in self.qr_sessions:
                    qr_session.tick()
                if since_status >= self.status_interval_s:
                    since_status = 0.0
                    if self.status_poller is not None:
                        self.status_poller.run_once()
                    if self.channel_status is not None:
                        self.channel_status.run_once()
                    for snapshot in self.balance_snapshots:
                        snapshot.run_once()  # itself once per its interval
                    if self.pending_statuses is not None:
                        self.match_pending_statuses()
            except redis.RedisError as exc:
                log.warning("housekeeping.redis_error", error=str(exc))
            except Exception:
                # This thread must outlive any single bad pass.
                log.exception("housekeeping.failed")
            self._stop_event.wait(self.promote_interval_s)
            since_maintenance += self.promote_interval_s
            since_reconcile += self.promote_interval_s
            since_status += self.promote_interval_s

    def match_pending_statuses(self) -> None:
        """Apply status webhooks that came before their send was recorded."""
        assert self.pending_statuses is not None
        matched, expired = self.pending_statuses.match(epoch_ms())
        if matched or expired:
            log.info("delivery_status.pending_matched", matched=matched, expired=expired)

    def run_maintenance(self) -> None:
        """Re-queue messages held by dead workers, on every queue."""
        for queue in self.queues:
            self.broker.maintain(queue)
