"""Enqueue Connectus sends from any Python service.

>>> import producers
>>> job_id = producers.send_sms("+56 9 8765 4321", "Hola!")   # doctest: +SKIP
>>> producers.get_status(job_id).state                         # doctest: +SKIP
'queued'

The module-level functions use a default :class:`Producer` built on first
use from the environment (never at import time); call :func:`configure` to
pass your own settings or Redis client, or build a :class:`Producer`.

Campaigns (one template, many recipients): :class:`CampaignProducer` takes a
CSV/JSONL path or any iterable of mappings and :class:`CampaignOptions`.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from config import Settings, load_settings
from config.tenants import DEFAULT_TENANT
from core.jobs import IdempotencyConflict
from core.models import JobRecord, Kind, State
from core.validation import FieldError, InvalidInput
from producers.api import JobNotFound, Producer
from producers.campaign_control import CampaignControl, CampaignNotFound
from producers.campaign_plan import CampaignOptions, CampaignPlan
from producers.campaigns import Accepted, CampaignProducer, CampaignRefused

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


def send_sms(dst_number: str | int, sms_content: str, **options: Any) -> str:
    """See :meth:`Producer.send_sms`."""
    return _producer().send_sms(dst_number, sms_content, **options)


def send_otp(dst_number: str | int, sms_content: str, **options: Any) -> str:
    """See :meth:`Producer.send_otp`."""
    return _producer().send_otp(dst_number, sms_content, **options)


def send_email(dst_email: str, subject: str, email_content: str, **options: Any) -> str:
    """See :meth:`Producer.send_email`."""
    return _producer().send_email(dst_email, subject, email_content, **options)


def send_otp_email(dst_email: str, subject: str, email_content: str, **options: Any) -> str:
    """See :meth:`Producer.send_otp_email`."""
    return _producer().send_otp_email(dst_email, subject, email_content, **options)


def send_whatsapp(dst_number: str | int, whatsapp_content: str, **options: Any) -> str:
    """See :meth:`Producer.send_whatsapp`."""
    return _producer().send_whatsapp(dst_number, whatsapp_content, **options)


def send_whatsapp_qr(number: str | int, message: str, **options: Any) -> str:
    """See :meth:`Producer.send_whatsapp_qr`."""
    return _producer().send_whatsapp_qr(number, message, **options)


def send_whatsapp_qr_group(group_name: str, message: str, **options: Any) -> str:
    """See :meth:`Producer.send_whatsapp_qr_group`."""
    return _producer().send_whatsapp_qr_group(group_name, message, **options)


def get_status(job_id: str) -> JobRecord:
    """The job's record; raises :class:`JobNotFound`."""
    return _producer().get_status(job_id)


def cancel(job_id: str) -> str:
    """Cancel a job that has not started sending."""
    return _producer().cancel(job_id)
