"""One Dramatiq actor per send type, declared on a broker passed in (not at import
time): the worker process builds it once, a test uses a StubBroker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
from dramatiq.broker import Broker

import connectus_worker.tracing as tracing
from connectus_worker.config import Settings
from connectus_worker.domain.models import Kind
from connectus_worker.tracing import TRACE_FIELD
from connectus_worker.transport.routing import queue_for
from connectus_worker.worker.accounts import ByAccount
from connectus_worker.worker.bulk import BulkSender
from connectus_worker.worker.campaign_messages import BULK_ACTOR, chunk_of
from connectus_worker.worker.ledger import quarantine
from connectus_worker.worker.metrics import WorkerMetrics
from connectus_worker.worker.pipeline import SendPipeline


def register_actors(
    broker: Broker,
    pipeline: SendPipeline | Mapping[str, SendPipeline],
    settings: Settings,
    metrics: WorkerMetrics | None = None,
) -> dict[Kind, dramatiq.Actor[..., Any]]:
    """Declare ``send_<kind>`` for every kind on ``broker``; returns them by kind.

    A job goes through its account's ``pipeline`` (:mod:`worker.accounts`). Each actor
    consumes its own queue (OTPs ``QUEUE_OTP``) and ``QUEUE_BULK``, where a producer may
    put SMS, e-mail or WhatsApp jobs, so an OTP never waits behind bulk work.
    """
    return {
        kind: dramatiq.Actor(
            _actor_fn(ByAccount.of_one(pipeline), kind, metrics),
            broker=broker,
            actor_name=kind.actor_name,
            queue_name=queue_for(kind, settings),
            # Dramatiq runs lower numbers first within a worker's work queue: an
            # OTP fetched behind bulk messages still goes out next.
            priority=0 if kind.spec.otp else 10,
            options={},
        )
        for kind in Kind
    }


def register_bulk_actor(
    broker: Broker, sender: BulkSender | Mapping[str, BulkSender], settings: Settings
) -> dramatiq.Actor[..., Any]:
    """Declare ``send_sms_bulk``: one campaign chunk through v1 ``send_sms_bulk``, by
    the sender of the campaign's account (one per account, :mod:`worker.accounts`)."""
    senders = ByAccount.of_one(sender)

    def send_sms_bulk(*args: Any, **kwargs: Any) -> None:
        first = senders.first
        try:
            campaign, number = chunk_of(args, kwargs)
        except ValueError as exc:
            quarantine(first.jobs, BULK_ACTOR, args, kwargs, str(exc))
            return
        account = None
        if len(senders) > 1:  # one read per chunk of up to 1,000 recipients
            found = first.campaigns.get(campaign)
            account = found.account if found is not None else None
        if not senders.has(account):
            quarantine(
                first.jobs, BULK_ACTOR, args, kwargs, f"campaign account {account!r}: {_NOT_HERE}"
            )
            return
        senders.of(account).handle(campaign, number)

    return dramatiq.Actor(
        send_sms_bulk,
        broker=broker,
        actor_name=BULK_ACTOR,
        queue_name=settings.queue_bulk,
        priority=10,
        options={},
    )


#: Why a job of an account this worker does not have is quarantined (not sent by another).
_NOT_HERE = "is not in this worker's CONNECTUS_ACCOUNTS"


def _actor_fn(
    pipelines: ByAccount[SendPipeline], kind: Kind, metrics: WorkerMetrics | None
) -> Callable[..., None]:
    # Any arguments are accepted so that a malformed message reaches the
    # check below and is dead-lettered with a reason, instead of failing in
    # Dramatiq's call with a TypeError.
    def send(*args: Any, **kwargs: Any) -> None:
        job = kwargs.get("job")
        problem = malformed(kind, args, kwargs)
        account = job.get("account") if problem is None and isinstance(job, dict) else None
        if problem is None and not pipelines.has(account):
            problem = f"job.account {account!r} {_NOT_HERE}"
        if problem is not None:
            member = quarantine(pipelines.first.store, kind.actor_name, args, kwargs, problem,
                                shape_only=kind.spec.otp)  # fmt: skip
            if metrics is not None:
                metrics.handled(kind, member, str(account or pipelines.first.account))
            return
        assert isinstance(job, dict)
        pipeline = pipelines.of(account)
        # One span per delivery attempt, a child of the trace the job was sent in.
        attributes = {"job_id": job["job_id"], "kind": kind.value, "queue": job["queue"]}
        with tracing.span(f"send {kind.value}", "consumer", attributes, job.get(TRACE_FIELD)):
            result = pipeline.handle(kind, job)
            tracing.annotate(outcome=result)
        if metrics is not None:
            metrics.handled(kind, result, pipeline.account)

    send.__name__ = kind.actor_name
    send.__qualname__ = kind.actor_name
    return send


def malformed(kind: Kind, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Why a message can't be a job of ``kind``, or None if it can."""
    if args or set(kwargs) != {"job"}:
        return "expected exactly one keyword argument, 'job'"
    job = kwargs["job"]
    if not isinstance(job, dict):
        return "job: must be an object"
    for name in ("job_id", "key", "queue"):
        if not isinstance(job.get(name), str) or not job[name]:
            return f"job.{name}: must be a non-empty string"
    if job.get("kind") != kind.value:
        return f"job.kind: {job.get('kind')!r} does not match actor {kind.actor_name}"
    if not isinstance(job.get("payload"), dict):
        return "job.payload: must be an object"
    if not isinstance(job.get("account") or "", str):
        return "job.account: must be a string (a name of CONNECTUS_ACCOUNTS)"
    return None
