"""Which queue a job goes to."""

from __future__ import annotations

from typing import Literal

from connectus_worker.config import Settings
from connectus_worker.domain.models import Kind

Priority = Literal["transactional", "bulk"]


def queue_for(kind: Kind, settings: Settings, priority: Priority = "transactional") -> str:
    """The queue for a job: OTPs have their own (never ``bulk``: they must never wait);
    everything else is transactional unless ``bulk``."""
    if kind.spec.otp:
        return settings.queue_otp
    return settings.queue_bulk if priority == "bulk" else settings.queue_transactional
