"""One Dramatiq actor per send type, registered on a broker that is passed in.

Actors are declared by a function, not at import time, so that the broker
(and its settings) are built once by the caller: the worker process, or a
test with a StubBroker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import Broker

from config import Settings
from core.models import Kind
from core.routing import default_queue
from worker.pipeline import SendPipeline


def register_actors(
    broker: Broker, pipeline: SendPipeline, settings: Settings
) -> dict[Kind, dramatiq.Actor[..., Any]]:
    """Declare ``send_<kind>`` for every kind on ``broker``; returns them by kind.

    Each actor's own queue is its default one (OTPs on ``QUEUE_OTP``); a
    producer may put an SMS, e-mail or WhatsApp job on ``QUEUE_BULK``, which
    the same actor consumes, so an OTP never waits behind bulk work.
    """
    return {
        kind: dramatiq.Actor(
            _actor_fn(pipeline, kind),
            broker=broker,
            actor_name=kind.actor_name,
            queue_name=default_queue(kind, settings),
            priority=0,
            options={},
        )
        for kind in Kind
    }


def _actor_fn(pipeline: SendPipeline, kind: Kind) -> Callable[..., None]:
    def send(job: dict[str, Any]) -> None:
        pipeline.handle(kind, job)

    send.__name__ = kind.actor_name
    send.__qualname__ = kind.actor_name
    return send
