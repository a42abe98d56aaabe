"""The send lease: the worst case of the in-process attempts plus LEASE_MARGIN_S."""

from __future__ import annotations

from config import load_settings
from worker.app import lease_ms

SHORT = {
    "RETRY_ATTEMPTS": "2",
    "CONNECTUS_CONNECT_TIMEOUT_S": "1",
    "CONNECTUS_READ_TIMEOUT_S": "5",
    "RETRY_INITIAL_BACKOFF_MS": "100",
    "RETRY_MAX_BACKOFF_MS": "500",
}


def test_the_lease_covers_every_attempt_plus_the_default_30_s_margin() -> None:
    # 2 x (1 + 5 + 0.5) s of attempts + 30 s
    assert lease_ms(load_settings(SHORT)) == 43_000


def test_the_margin_is_a_setting() -> None:
    assert lease_ms(load_settings({**SHORT, "LEASE_MARGIN_S": "1.5"})) == 14_500
