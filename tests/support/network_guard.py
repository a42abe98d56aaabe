"""What the unit tests' network guard (tests/unit/conftest.py) raises and records."""

from __future__ import annotations

from dataclasses import dataclass, field


class NetworkAccessInUnitTest(ConnectionError):
    """A unit test tried to open a network connection.

    An OSError, so that code under test cleans up its socket as it would for a
    refused connection; the recorded attempt still fails the test.
    """


@dataclass
class NetworkGuard:
    attempts: list[str] = field(default_factory=list)
