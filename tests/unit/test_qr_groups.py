"""WhatsApp QR groups as a send kind, and the QR session's pause, on fakeredis."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import fakeredis
import httpx
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind, State
from connectus_worker.producers.api import Producer
from connectus_worker.worker.breaker import CircuitBreaker
from connectus_worker.worker.breaker_scopes import QR_SESSION, effect, target_for
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.connectus.answers import QrMessage
from connectus_worker.worker.qr_session import QrSessionWatch
from connectus_worker.worker.reconcile import Reconciler
from tests.support.clock import Clock
from tests.support.connectus import make_client
from tests.support.pipeline import unknown_job

GROUP = "Equipo ventas"


@pytest.fixture
def producer(clock: Clock) -> Producer:
    return Producer(load_settings({}), redis_client=fakeredis.FakeRedis(), clock=clock)


@dataclass
class FakeQr:
    group: list[QrMessage] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def last_group_messages(self, *, group_name: str) -> tuple[QrMessage, ...]:
        self.asked.append(group_name)
        return tuple(self.group)


@dataclass
class FakeClient:
    qr: FakeQr = field(default_factory=FakeQr)


def _reconciler(producer: Producer, client: FakeClient) -> Reconciler:
    return Reconciler(store=producer.store, client=client, after_s=1, window_s=10,  # type: ignore[arg-type]
                      undecidable="resend", timezone="America/Santiago",
                      content_key=producer.settings.content_key)  # fmt: skip


def _listed(message_id: str | None, message: str, *, from_me: bool = True) -> QrMessage:
    return QrMessage(message_id, None, message, from_me, "1700000000")


def test_a_group_send_is_recorded_with_the_group_as_its_destination(
    producer: Producer,
) -> None:
    job_id = producer.send_whatsapp_qr_group(GROUP, "Reunión a las 10", priority="bulk")
    record = producer.get_status(job_id)
    assert (record.kind, record.dst, record.queue) == (Kind.WHATSAPP_QR_GROUP, f"group:{GROUP}",
                                                       "bulk")  # fmt: skip


def test_an_unknown_group_send_found_in_the_group_listing_is_sent(
    producer: Producer,
    clock: Clock,
) -> None:
    send = {"kind": Kind.WHATSAPP_QR_GROUP, "args": (GROUP, "hola grupo")}
    job_id = unknown_job(producer, clock, send)
    client = FakeClient(FakeQr(group=[_listed("g-0", "hola grupo", from_me=False),
                                      _listed("g-1", "hola grupo")]))  # fmt: skip
    clock.now_ms += 1000
    assert _reconciler(producer, client).run_once() == {"found": 1}
    record = producer.get_status(job_id)
    assert (record.state, record.provider_id) == (State.SENT, "g-1")  # ours, not a member's
    assert client.qr.asked == [GROUP]


@pytest.mark.parametrize(
    "listing",
    [[], [_listed(None, "hola grupo")]],
    ids=["not-listed", "listed-without-id"],
)
def test_an_unknown_group_send_not_identified_goes_to_review_never_resent(
    producer: Producer,
    clock: Clock,
    listing: list[QrMessage],
) -> None:
    job_id = unknown_job(producer, clock, {"kind": Kind.WHATSAPP_QR_GROUP,
                                            "args": (GROUP, "hola grupo")})  # fmt: skip
    reconciler = _reconciler(producer, FakeClient(FakeQr(group=listing)))
    clock.now_ms += 5000
    assert reconciler.run_once() == {"pending": 1}
    clock.now_ms += 5000
    # RECONCILE_UNDECIDABLE=resend here, and still: a group message is not resent.
    assert reconciler.run_once() == {"review": 1}
    assert producer.redis.zscore(producer.store.keys.review, job_id) is not None
    assert producer.get_status(job_id).state is State.UNKNOWN
    assert producer.redis.llen(producer.store.keys.queue("transactional")) == 0


def test_a_disconnected_session_pauses_every_qr_send_and_nothing_else() -> None:
    group = target_for(Kind.WHATSAPP_QR_GROUP, {"group_name": GROUP, "message": "m"})
    direct = target_for(Kind.WHATSAPP_QR, {"number": "56987654321"})
    sms = target_for(Kind.SMS, {"dst_number": "56987654321"})
    whatsapp = target_for(Kind.WHATSAPP, {"dst_number": "56987654321"})
    refused = e.SessionDisconnected("off", reason="DISCONNECTED", status_code=409)
    assert effect(refused, group) == ("trip", QR_SESSION)
    assert [t.covered_by(QR_SESSION) for t in (group, direct, sms, whatsapp)] == [
        True, True, False, False]  # fmt: skip
    # The same words from another host say nothing about the QR session.
    assert effect(refused, sms) == ("answered", "host:v3")


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _watch(
    server: fakeredis.FakeServer, answers: list[httpx.Response], clock: Monotonic
) -> tuple[QrSessionWatch, CircuitBreaker, list[httpx.Request]]:
    redis = fakeredis.FakeRedis(server=server)
    breaker = CircuitBreaker(redis, prefix="t", account="acc", open_ms=60_000)
    client, recorder = make_client(*answers)
    watch = QrSessionWatch(client=client, breaker=breaker, redis_client=redis, prefix="t",
                           interval_s=5.0, monotonic=clock)  # fmt: skip
    return watch, breaker, recorder.requests


def test_the_status_watch_opens_the_pause_and_closes_it_when_connected() -> None:
    server, clock = fakeredis.FakeServer(), Monotonic()
    answers = [
        httpx.Response(200, json={"status": "DISCONNECTED"}),
        httpx.Response(200, json={"status": "connected"}),
    ]
    watch, breaker, requests = _watch(server, answers, clock)
    qr = target_for(Kind.WHATSAPP_QR, {"number": "56987654321"})
    assert watch.tick() == "disconnected"
    assert breaker.allow(qr).allowed is False
    assert breaker.status()["scopes"][0]["reason"] == "GET /status: DISCONNECTED"
    assert breaker.allow(target_for(Kind.SMS, {"dst_number": "56987654321"})).allowed is True
    clock.now += 5.0
    server_lock = fakeredis.FakeRedis(server=server)
    server_lock.delete("t:qr_session:lock")  # the lock's own expiry, on fakeredis's clock
    assert watch.tick() == "connected"
    assert breaker.allow(qr).allowed is True and breaker.is_closed(QR_SESSION)
    assert [r.url.path for r in requests] == ["/status", "/status"]


def test_one_process_checks_per_interval_and_zero_means_never() -> None:
    server, clock = fakeredis.FakeServer(), Monotonic()
    ok = httpx.Response(200, json={"status": "CONNECTED"})
    first, _, asked_first = _watch(server, [ok], clock)
    second, _, asked_second = _watch(server, [ok], clock)
    assert first.tick() == "connected"
    assert second.tick() is None  # the other process holds this interval
    assert first.tick() is None  # its own interval has not passed
    assert (len(asked_first), len(asked_second)) == (1, 0)
    never, _, asked_never = _watch(server, [ok], clock)
    never.interval_s = 0
    assert never.tick() is None and asked_never == []


def test_a_failing_status_call_decides_nothing() -> None:
    server, clock = fakeredis.FakeServer(), Monotonic()
    watch, breaker, _ = _watch(server, [httpx.Response(503, json={"error": "down"})], clock)
    assert watch.check() == "unknown"
    assert breaker.is_closed(QR_SESSION)


def test_a_send_held_by_the_session_looks_again_at_each_status_interval() -> None:
    redis = fakeredis.FakeRedis()
    breaker = CircuitBreaker(redis, prefix="t", account="acc", open_ms=60_000,
                             recheck_ms={QR_SESSION: 2_000})  # fmt: skip
    qr = target_for(Kind.WHATSAPP_QR_GROUP, {"group_name": GROUP, "message": "m"})
    assert breaker.trip(QR_SESSION, "GET /status: DISCONNECTED") is True
    assert breaker.trip(QR_SESSION, "again") is False  # already open: left as it is
    held = breaker.allow(qr)
    assert (held.allowed, held.scope, held.retry_in_ms) == (False, QR_SESSION, 2_000)
    # Other scopes wait their whole open period: nothing outside the breaker closes them.
    breaker.close(QR_SESSION, by="test")
    breaker.trip("balance:whatsapp_qr", "402")
    other = breaker.allow(qr)
    assert (other.allowed, other.scope) == (False, "balance:whatsapp_qr")
    assert other.retry_in_ms > 50_000


def test_a_qr_answer_that_is_an_image_is_told_apart_from_pairing_text() -> None:
    from connectus_worker.cli.qr import image_of

    png = b"\x89PNG\r\n\x1a\n-rest-"
    assert image_of("data:image/png;base64," + base64.b64encode(png).decode()) == png
    assert image_of("2@abc,def,ghi") is None  # the pairing text: drawn by segno
    assert image_of("data:image/png;base64,not base64!") is None
    assert image_of("data:text/plain;base64,aGk=") is None
