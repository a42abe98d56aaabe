"""A clock for tests: epoch milliseconds that move only when the test says so."""

from __future__ import annotations


class Clock:
    """Callable returning ``now_ms`` (epoch ms); set or add to ``now_ms`` to move time."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms
