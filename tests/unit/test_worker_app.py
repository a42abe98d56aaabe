"""The worker process is wired from the settings it was given, and nothing else."""

from __future__ import annotations

import fakeredis

from connectus_worker.config import load_settings
from connectus_worker.worker.app import build_worker_app

CREDENTIALS = {"CONNECTUS_API_USER": "user", "CONNECTUS_API_KEY": "key-0123456789"}


def test_the_housekeeping_tick_comes_from_the_settings() -> None:
    settings = load_settings({**CREDENTIALS, "HOUSEKEEPING_INTERVAL_S": "0.7"})
    app = build_worker_app(settings, redis_client=fakeredis.FakeRedis())
    try:
        assert app.housekeeper.promote_interval_s == 0.7
        assert not app.housekeeper.is_alive()  # built, not started
    finally:
        app.close()


def test_the_default_tick_is_a_fifth_of_a_second() -> None:
    app = build_worker_app(load_settings(CREDENTIALS), redis_client=fakeredis.FakeRedis())
    try:
        assert app.housekeeper.promote_interval_s == 0.2
    finally:
        app.close()


def test_maintenance_puts_back_chunks_of_the_bulk_queue_of_the_settings() -> None:
    settings = load_settings({**CREDENTIALS, "QUEUE_BULK": "masivo", "KEY_PREFIX": "p"})
    app = build_worker_app(settings, redis_client=fakeredis.FakeRedis())
    try:
        recovery = app.housekeeper.chunk_recovery
        assert recovery is not None
        assert (recovery.queue, recovery.keys.prefix) == ("masivo", "p")
    finally:
        app.close()
