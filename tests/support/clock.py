"""The one hand-moved clock of the tests: time moves only when the test says so.

Calling the clock gives epoch milliseconds, the unit of the job store, the
breaker and the limiter. Code that reads epoch seconds (the sandbox, the
Connectus client's deadline) is given ``clock.seconds`` instead; ``now`` is the
same instant in seconds, readable and settable.
"""

from __future__ import annotations


class Clock:
    """Epoch ms in ``now_ms``; ``advance`` and ``sleep`` move it, ``slept`` records sleeps (s)."""

    def __init__(self, now_ms: float = 1_700_000_000_000) -> None:
        self.now_ms = now_ms
        self.slept: list[float] = []

    def __call__(self) -> float:
        """Epoch milliseconds."""
        return self.now_ms

    def seconds(self) -> float:
        """Epoch seconds: the clock for code that counts in seconds."""
        return self.now_ms / 1000

    @property
    def now(self) -> float:
        """Epoch seconds, settable (``clock.now += 0.5`` moves half a second)."""
        return self.now_ms / 1000

    @now.setter
    def now(self, seconds: float) -> None:
        self.now_ms = seconds * 1000

    def advance(self, ms: float = 0, *, seconds: float = 0) -> None:
        """Move time forward by ``ms`` milliseconds plus ``seconds`` seconds."""
        self.now_ms += ms + seconds * 1000

    def sleep(self, seconds: float) -> None:
        """Stand in for ``time.sleep``: records the wait and moves time by it, at once."""
        self.slept.append(seconds)
        self.now_ms += seconds * 1000
