"""Enqueue Connectus sends from any Python service.

>>> import producers
>>> job_id = producers.send_sms("+56 9 8765 4321", "Hola!")   # doctest: +SKIP

The module-level functions use a default :class:`Producer`, built from the environment
on first use (never at import); :func:`configure` passes your own settings or Redis
client. Campaigns (one template, many recipients): :class:`CampaignProducer`.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import redis

from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import Settings, load_settings
from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.models import JobRecord, Kind, State
from connectus_worker.domain.validation import FieldError, InvalidInput
from connectus_worker.ledger.jobs import IdempotencyConflict
from connectus_worker.producers.api import JobNotFound, Producer
from connectus_worker.producers.campaign_control import CampaignControl, CampaignNotFound
from connectus_worker.producers.campaign_plan import CampaignPlan
from connectus_worker.producers.campaigns import Accepted, CampaignProducer, CampaignRefused

__all__ = [
    "DEFAULT_TENANT",
    "Accepted",
    "CampaignControl",
    "CampaignNotFound",
    "CampaignOptions",
    "CampaignPlan",
    "CampaignProducer",
    "CampaignRefused",
    "FieldError",
    "IdempotencyConflict",
    "InvalidInput",
    "JobNotFound",
    "JobRecord",
    "Kind",
    "Producer",
    "State",
    "cancel",
    "configure",
    "get_status",
    "send_email",
    "send_otp",
    "send_otp_email",
    "send_sms",
    "send_whatsapp",
    "send_whatsapp_qr",
    "send_whatsapp_qr_group",
]

P = ParamSpec("P")
R = TypeVar("R")
_lock = threading.Lock()
_default: Producer | None = None


def configure(
    settings: Settings | None = None,
    *,
    redis_client: redis.Redis | None = None,
    tenant: str = DEFAULT_TENANT,
) -> Producer:
    """Set (and return) the producer the module-level functions use (``tenant``: whose
    jobs they send and read, see :mod:`config.tenants`)."""
    global _default
    with _lock:
        _default = Producer(settings or load_settings(), redis_client=redis_client, tenant=tenant)
        return _default


def _producer() -> Producer:
    with _lock:
        if _default is not None:
            return _default
    return configure()


def _delegate(method: Callable[Concatenate[Producer, P], R]) -> Callable[P, R]:
    """``method`` of the default producer, with its signature (typed, for IDEs and mypy)."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return method(_producer(), *args, **kwargs)

    signature = inspect.signature(method)  # help() shows it without ``self``
    call.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return call


send_sms = _delegate(Producer.send_sms)
send_otp = _delegate(Producer.send_otp)
send_email = _delegate(Producer.send_email)
send_otp_email = _delegate(Producer.send_otp_email)
send_whatsapp = _delegate(Producer.send_whatsapp)
send_whatsapp_qr = _delegate(Producer.send_whatsapp_qr)
send_whatsapp_qr_group = _delegate(Producer.send_whatsapp_qr_group)
get_status = _delegate(Producer.get_status)
cancel = _delegate(Producer.cancel)
