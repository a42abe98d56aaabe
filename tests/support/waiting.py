"""Wait for a condition with a deadline, instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T], *, timeout_s: float, interval_s: float = 0.05, what: str = "condition"
) -> T:
    """Return the first truthy ``probe()``; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s} s (last: {last!r})")
        time.sleep(interval_s)
        last = probe()
    return last
