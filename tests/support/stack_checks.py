"""What the integration tests read off a running stack, and how they wait for it.

They judge by the job records, the sandbox's charge ledger and the campaign
store, never by the worker's own say-so. Shared here so that no test module
imports another's helpers.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectus_worker.campaign.model import CampaignState
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.domain.models import State
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaign_control import CampaignControl
from connectus_worker.producers.campaigns import CampaignProducer
from connectus_worker.worker.breaker import CircuitBreaker
from devtools.stack import LocalStack

from .waiting import wait_for

SETTLED = {State.SENT, State.FAILED, State.UNKNOWN, State.CANCELLED}
#: The number the single-message tests send to (a Chilean mobile).
NUMBER = "+56 9 8765 4321"
#: Provider ids looked up soon after the send (documented answers name none).
LOOKUP_SOON = {"RECONCILE_AFTER_S": "0.2", "RECONCILE_INTERVAL_S": "0.3"}
#: Reconciliation fast enough for a test: ambiguous sends asked about within about a second.
FAST_RECONCILE = {
    "RECONCILE_AFTER_S": "0.5",
    "RECONCILE_WINDOW_S": "2",
    "RECONCILE_INTERVAL_S": "0.5",
}
#: Fast durable retries, so tests see several attempts in seconds.
FAST = {
    "RETRY_INITIAL_BACKOFF_MS": "20",
    "RETRY_MAX_BACKOFF_MS": "100",
    "DURABLE_MIN_BACKOFF_MS": "200",
    "DURABLE_MAX_BACKOFF_MS": "1000",
    "BROKER_MAINTENANCE_INTERVAL_S": "1",
    "WORKER_SHUTDOWN_GRACE_S": "10",
    # Short breaker cool-downs and generous rates: these tests are about
    # delivery; the breaker and the limiter have tests of their own.
    "BREAKER_OPEN_S": "1",
    "BREAKER_MAX_OPEN_S": "2",
    "RATE_SMS_PER_S": "500",
    "RATE_SMS_BURST": "100",
    "RATE_MIN_PER_S": "5",
}
#: A campaign stack whose admission and rate limit never hold a test back.
CAMPAIGN_ENV = {"CAMPAIGN_MAX_PENDING": "1000", "RATE_SMS_PER_S": "2000", "RATE_SMS_BURST": "500"}


# --- single messages -------------------------------------------------------------------


def identified(producer: Producer, job_ids: list[str], timeout_s: float = 30) -> dict[str, Any]:
    """Every sent job's record once its provider id is known (looked up, if the answer named
    none); the other jobs' records as they are."""

    def known() -> dict[str, Any] | None:
        records = {job_id: producer.get_status(job_id) for job_id in job_ids}
        pending = [r for r in records.values() if r.state is State.SENT and not r.provider_id]
        return None if pending else records

    return wait_for(known, timeout_s=timeout_s, what="every sent job's provider id")


def settle(producer: Producer, job_ids: list[str], timeout_s: float = 60) -> dict[str, Any]:
    """The jobs' records once every one is settled (sent, failed, unknown or cancelled)."""
    return wait_for(
        lambda: _all_settled(producer, job_ids), timeout_s=timeout_s, what="every job settled"
    )


def _all_settled(producer: Producer, job_ids: list[str]) -> dict[str, Any] | None:
    records = {job_id: producer.get_status(job_id) for job_id in job_ids}
    return records if all(r.state in SETTLED for r in records.values()) else None


def job_states(producer: Producer, job_ids: list[str]) -> Counter[State]:
    return Counter(producer.get_status(j).state for j in job_ids)


def settle_final(producer: Producer, job_ids: list[str]) -> dict[str, Any]:
    """Wait until no job is unknown any more (reconciled), then return the records."""
    wait_for(
        lambda: set(job_states(producer, job_ids)) <= {State.SENT, State.FAILED},
        timeout_s=60,
        what="every job reconciled",
    )
    return {j: producer.get_status(j) for j in job_ids}


def deferred(producer: Producer, job_id: str) -> bool:
    """Put back on the schedule untried: no attempt spent, not failed."""
    record = producer.get_status(job_id)
    due = producer.redis.zscore(producer.store.keys.schedule, job_id)
    return record.state is State.QUEUED and record.attempts == 0 and due is not None


def open_scopes(breaker: CircuitBreaker) -> dict[str, dict[str, Any]]:
    """The breaker's shared state in Redis, by scope."""
    return {s["scope"]: s for s in breaker.status()["scopes"]}


# --- the sandbox -----------------------------------------------------------------------


def ledger(stack: LocalStack, account: str | None = None) -> list[dict[str, Any]]:
    """The sandbox's own charge ledger: one entry per message it charged (of the
    sandbox account whose API user is ``account``; None: the first)."""
    with stack.sandbox_client() as client:
        answer = client.get("/_sandbox/ledger", headers=_account_header(account))
        return list(answer.json()["charges"])


def charge_count(stack: LocalStack) -> int:
    """How many charges the sandbox has made (its stats: cheap to poll, unlike the ledger)."""
    with stack.sandbox_client() as client:
        return int(client.get("/_sandbox/stats").json()["charges"])


def set_faults(stack: LocalStack, account: str | None = None, **faults: Any) -> None:
    """Tell the sandbox which faults to inject from now on (to ``account``'s sends)."""
    with stack.sandbox_client() as client:
        client.put("/_sandbox/faults", json=faults, headers=_account_header(account)
                   ).raise_for_status()  # fmt: skip


def _account_header(account: str | None) -> dict[str, str]:
    return {"X-Sandbox-Account": account} if account else {}


def charged_per_dst(stack: LocalStack) -> Counter[str]:
    """How many SMS the sandbox charged to each destination."""
    return Counter(str(c["dst"]) for c in ledger(stack) if c["product"] == "sms")


# --- processes -------------------------------------------------------------------------


@contextmanager
def running_stack(**kwargs: Any) -> Iterator[LocalStack]:
    """``LocalStack(**kwargs)``, started; torn down without a drain (its workers are
    SIGKILLed: at the end of a test a drain proves nothing and costs seconds)."""
    stack = LocalStack(**kwargs)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop(drain=False)


def child_pids(pid: int) -> set[int]:
    """The direct children of a process (a supervisor's worker processes)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return {int(line) for line in out.stdout.split()}


# --- campaigns -------------------------------------------------------------------------


def numbers(n: int, start: int = 0) -> list[str]:
    """Distinct valid Chilean mobile numbers (E.164 digits)."""
    return [f"569{87000000 + start + i:08d}" for i in range(n)]


def campaign_tools(stack: LocalStack) -> tuple[CampaignProducer, CampaignControl]:
    """A campaign producer and a campaign control on the stack's Redis."""
    settings = stack.settings
    producer = CampaignProducer(settings)
    store = CampaignStore(producer.redis, Keys(settings.key_prefix),
                          ttl_s=settings.campaign_ttl_s, job_ttl_s=settings.job_ttl_s)  # fmt: skip
    return producer, CampaignControl(store)


def campaign_state(control: CampaignControl, campaign_id: str) -> CampaignState:
    return control.get(campaign_id).state


def campaign_finished(control: CampaignControl, campaign_id: str) -> bool:
    return campaign_state(control, campaign_id) is CampaignState.FINISHED
