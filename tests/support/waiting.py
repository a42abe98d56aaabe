"""Wait for a condition with a deadline, instead of sleeping a fixed time.

A deadline is how long a test gives an event before calling it missing, so it
costs nothing when the event comes: it is stretched on a loaded box (``make
test`` runs two processes on two cores, next to other people's work), where a
worker process can take seconds longer to start or to be scheduled at all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: The most a deadline is stretched on a loaded box.
MAX_STRETCH = 4.0


def scaled(seconds: float) -> float:
    """``seconds`` times the runnable processes per core over the last minute
    (1 to :data:`MAX_STRETCH`): a deadline for this box as loaded now."""
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * min(MAX_STRETCH, max(1.0, per_core))


def wait_for(
    probe: Callable[[], T], *, timeout_s: float, interval_s: float = 0.05, what: str = "condition"
) -> T:
    """Return the first truthy ``probe()``; raise ``TimeoutError`` naming ``what`` after
    ``timeout_s`` (s), stretched by :func:`scaled` for the load when the wait began."""
    limit_s = scaled(timeout_s)
    deadline = time.monotonic() + limit_s
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {limit_s:.0f} s (last: {last!r})")
        time.sleep(interval_s)
        last = probe()
    return last
