"""The send lease: the worst case of the in-process attempts plus LEASE_MARGIN_S."""

from __future__ import annotations

from connectus_worker.config import load_settings
from connectus_worker.worker.app import build_client, lease_ms

CREDENTIALS = {"CONNECTUS_API_USER": "user", "CONNECTUS_API_KEY": "key-0123456789"}
SHORT = {
    "RETRY_ATTEMPTS": "2",
    "CONNECTUS_CONNECT_TIMEOUT_S": "1",
    "CONNECTUS_READ_TIMEOUT_S": "5",
    "CONNECTUS_WRITE_TIMEOUT_S": "2",
    "RETRY_INITIAL_BACKOFF_MS": "100",
    "RETRY_MAX_BACKOFF_MS": "500",
}


def test_the_lease_covers_every_attempt_plus_the_default_30_s_margin() -> None:
    # 2 x (1 connect + 2 write + 5 read + 0.5 backoff) s of attempts + 30 s
    assert lease_ms(load_settings(SHORT)) == 47_000


def test_the_margin_is_a_setting() -> None:
    assert lease_ms(load_settings({**SHORT, "LEASE_MARGIN_S": "1.5"})) == 18_500


def test_the_write_timeout_counts_and_reaches_the_client() -> None:
    settings = load_settings({**SHORT, "CONNECTUS_WRITE_TIMEOUT_S": "4"})
    assert lease_ms(settings) == 47_000 + 2 * 2_000
    client = build_client(load_settings({**SHORT, "CONNECTUS_WRITE_TIMEOUT_S": "4", **CREDENTIALS}))
    with client:
        assert client.timeout.write == 4.0
