"""The console's dead-letter and review actions follow ``connectus dlq`` and ``review``
(fakeredis, the app in process): an OTP is never replayed, a filter bounds "all"."""

from __future__ import annotations

import random
import re
import time
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest

from connectus_worker.config import load_settings
from connectus_worker.config.console_users import MIN_ITERATIONS, hash_password
from connectus_worker.domain.models import Kind
from connectus_worker.ledger.deadletters import DeadLetters
from connectus_worker.producers.api import Producer
from connectus_worker.service import build_app
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.pipeline import SendPipeline
from connectus_worker.worker.policy import RetryPolicy
from tests.support.clock import Clock
from tests.support.pipeline import FakeSender, take_job

ENV = {
    "INTAKE_TOKENS": "tok-A-0123456789abcdef",
    "WEBHOOK_SECRET": "hook-0123456789abcdef",
    "CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl",
    "CONSOLE_USERS": f"ana:admin:{hash_password('admin-password-1', iterations=MIN_ITERATIONS)}",
    "CONSOLE_SECRET_KEY": "console-secret-key-0123456789abcdef",
}
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def producer() -> Producer:
    # Now, not a fixed past: the console reads expiry against the real time.
    clock = Clock(now_ms=int(time.time() * 1000))
    return Producer(load_settings(ENV), redis_client=fakeredis.FakeRedis(), clock=clock)


def _dead(producer: Producer, kind: Kind) -> str:
    """One job of ``kind`` failed permanently into the dead-letter set."""
    if kind is Kind.EMAIL:
        job_id = producer.send_email("ana@example.com", "s", "<p>x</p>")
    elif kind is Kind.OTP:
        job_id = producer.send_otp("56987654321", "codigo 123456")
    else:
        job_id = producer.send_sms("56987654321", "hola", priority="bulk")
    queue = {Kind.EMAIL: "transactional", Kind.OTP: "otp"}.get(kind, "bulk")
    policy = RetryPolicy(max_retries=3, min_backoff_ms=1000, max_backoff_ms=8000,
                         max_message_age_s=3600)  # fmt: skip
    pipeline = SendPipeline(content_key=b"k" * 32, store=producer.store,
                            send=FakeSender(e.Rejected("no", reason="x")), policy=policy,
                            worker_id="w", lease_ms=60_000, clock=producer.store.clock,
                            rng=random.Random(1))  # fmt: skip
    assert pipeline.handle(kind, take_job(producer, queue)) == "failed"
    return job_id


@pytest.fixture
async def admin(producer: Producer) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    app = build_app(load_settings(ENV), redis_client=producer.redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as http:  # fmt: skip
        token = re.findall(r'name="csrf_token" value="([^"]+)"', (await http.get("/ui/login")).text)
        await http.post("/ui/login", data={"csrf_token": token[0], "username": "ana",
                                           "password": "admin-password-1"})  # fmt: skip
        page = (await http.get("/ui/deadletters")).text
        yield http, re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]


async def test_replaying_the_selected_refuses_an_otp_and_replays_the_rest(
    producer: Producer, admin: tuple[httpx.AsyncClient, str]
) -> None:
    sms, otp = _dead(producer, Kind.SMS), _dead(producer, Kind.OTP)
    http, token = admin
    answer = await http.post("/ui/deadletters/replay", data={"csrf_token": token,
                             "job_id": [sms, otp]})  # fmt: skip
    assert answer.status_code == 303
    shown = (await http.get(answer.headers["location"])).text
    assert "replayed 1 of 2" in shown and "an OTP is not replayed" in shown
    letters = DeadLetters(producer.store)
    assert letters.get(sms) is None and letters.get(otp) is not None


async def test_purging_all_that_match_purges_only_the_filter(
    producer: Producer, admin: tuple[httpx.AsyncClient, str]
) -> None:
    sms, email = _dead(producer, Kind.SMS), _dead(producer, Kind.EMAIL)
    http, token = admin
    listed = (await http.get("/ui/deadletters?queue=transactional")).text
    assert email in listed and sms not in listed
    answer = await http.post("/ui/deadletters/purge", data={"csrf_token": token, "all": "1",
                             "queue": "transactional"})  # fmt: skip
    assert "purged+1" in answer.headers["location"]
    letters = DeadLetters(producer.store)
    assert letters.get(email) is None and letters.get(sms) is not None
    nothing = await http.post("/ui/deadletters/replay", data={"csrf_token": token})
    assert nothing.status_code == 400 and "select at least one" in nothing.text


async def test_review_resend_and_drop_answer_for_a_job_not_held(
    admin: tuple[httpx.AsyncClient, str],
) -> None:
    http, token = admin
    for action in ("resend", "drop"):
        answer = await http.post(f"/ui/review/{action}", data={"csrf_token": token,
                                 "job_id": "nope"}, follow_redirects=True)  # fmt: skip
        assert "nope: not_held" in answer.text
