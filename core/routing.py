"""Which queue a job goes to."""

from __future__ import annotations

from typing import Literal

from config import Settings
from core.models import Kind

Priority = Literal["transactional", "bulk"]


def default_queue(kind: Kind, settings: Settings) -> str:
    """OTPs have their own queue; everything else is transactional by default."""
    return settings.queue_otp if kind.is_otp else settings.queue_transactional


def queue_for(kind: Kind, settings: Settings, priority: Priority = "transactional") -> str:
    """The queue for a job; ``bulk`` is refused for OTPs, which must never wait."""
    if kind.is_otp:
        return settings.queue_otp
    return settings.queue_bulk if priority == "bulk" else settings.queue_transactional
