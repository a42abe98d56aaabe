"""Time limits end to end: real Redis, worker processes, the sandbox over HTTP.

The producers' clocks are injected (a job "queued five days ago"); the worker
processes run on the wall clock. Judged by the job records and by the
sandbox's charge ledger: an expired job is never charged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from connectus_worker.config import Settings, load_settings
from connectus_worker.domain.hashing import content_hash
from connectus_worker.domain.models import State
from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.producers.api import Producer
from devtools.service_server import ServiceServer
from devtools.stack import LocalStack
from tests.support.stack_checks import ledger, settle
from tests.support.waiting import wait_for

NUMBER = "56987654321"
SRC_EMAIL = "contacto@empresa.cl"
DAY_MS = 86_400_000


def _queued_ago(stack: LocalStack, ago_ms: int) -> Producer:
    """A producer whose clock stands ``ago_ms`` in the past: its jobs were queued then."""
    return Producer(stack.settings, clock=lambda: epoch_ms() - ago_ms)


def test_limits_are_kept_by_real_workers_and_nothing_expired_is_charged(
    stack: LocalStack,
) -> None:
    now = datetime.now(UTC)
    long_ago, otp_ago = _queued_ago(stack, 5 * DAY_MS), _queued_ago(stack, 301_000)
    jobs = {
        # Queued five days ago, due now: as fresh as a new job (the bug: Expired).
        "due_now": long_ago.send_sms(NUMBER, "programado hace 5 dias", deliver_at=now),
        # Never sent after OTP_MAX_AGE_S (300 s), SMS or e-mail.
        "otp_late": otp_ago.send_otp(NUMBER, "Codigo 111111"),
        "otp_email_late": otp_ago.send_otp_email(
            "ana@example.com", "Codigo", "<p>222222</p>", src_email=SRC_EMAIL
        ),
        # Its own limit replaces OTP_MAX_AGE_S.
        "otp_own": otp_ago.send_otp(NUMBER, "Codigo 333333", max_age_s=900),
        "sms_own_late": _queued_ago(stack, 10_000).send_sms(NUMBER, "tarde", max_age_s=5),
        "sms_until": long_ago.send_sms(NUMBER, "a tiempo", expires_at=now + timedelta(minutes=5)),
    }
    records = settle(Producer(stack.settings), list(jobs.values()))
    states = {name: (records[job].state, records[job].error_class) for name, job in jobs.items()}
    assert states == {
        "due_now": (State.SENT, None), "otp_own": (State.SENT, None),
        "sms_until": (State.SENT, None),
        "otp_late": (State.FAILED, "Expired"), "otp_email_late": (State.FAILED, "Expired"),
        "sms_own_late": (State.FAILED, "Expired"),
    }  # fmt: skip
    assert "OTP_MAX_AGE_S (300 s)" in (records[jobs["otp_late"]].last_error or "")
    assert "max_age_s" in (records[jobs["sms_own_late"]].last_error or "")
    charged = Counter(c["content_sha256"] for c in ledger(stack))
    sent = ("programado hace 5 dias", "Codigo 333333", "a tiempo")
    assert charged == Counter({content_hash(text): 1 for text in sent})


# --- over HTTP: the intake takes a limit, and workers that come back late keep it ---------

TOKEN = "it-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    return load_settings({"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix,
                          "INTAKE_TOKENS": TOKEN,
                          "WEBHOOK_SECRET": "it-hook-0123456789abcdef"})  # fmt: skip


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with ServiceServer(settings) as server, httpx.Client(base_url=server.base_url,
                                                         timeout=10) as client:  # fmt: skip
        yield client


def test_an_otp_posted_while_the_workers_are_down_expires_and_is_never_sent(
    make_stack: Callable[..., LocalStack], settings: Settings, http: httpx.Client
) -> None:
    stack = make_stack(start_workers=False)
    otp = {"type": "otp", "dst_number": NUMBER, "sms_content": "Codigo 444444"}
    short = http.post("/v1/messages", json={**otp, "max_age_s": 0.5}, headers=BEARER)
    long = http.post("/v1/messages", json={**otp, "sms_content": "Codigo 555555",
                                           "max_age_s": 600}, headers=BEARER)  # fmt: skip
    assert (short.status_code, long.status_code) == (202, 202), short.text + long.text
    shown = http.get(short.headers["location"], headers=BEARER).json()
    deadline = datetime.fromisoformat(shown["expires_at"])
    bad = http.post("/v1/messages", json={**otp, "max_age_s": -1}, headers=BEARER)
    assert bad.status_code == 422
    assert bad.json()["invalid-params"] == [{"name": "max_age_s",
                                             "reason": "must be greater than 0 seconds"}]  # fmt: skip
    # The workers come back after the short limit has run out (a slow deploy).
    wait_for(lambda: datetime.now(UTC) > deadline, timeout_s=5, what="the limit ran out")
    stack.start_worker_supervisor()
    producer = Producer(stack.settings)
    ids = [short.json()["job_id"], long.json()["job_id"]]
    records = settle(producer, ids)
    assert [(records[i].state, records[i].error_class) for i in ids] == [
        (State.FAILED, "Expired"), (State.SENT, None)]  # fmt: skip
    assert [c["content_sha256"] for c in ledger(stack)] == [content_hash("Codigo 555555")]
    assert time.time() > deadline.timestamp()
