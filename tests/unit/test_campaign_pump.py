"""The campaign pump on fakeredis with an injected clock: start on time, max lateness,
send windows (DST-proof local time), lazy release bounded by CAMPAIGN_MAX_PENDING."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import fakeredis
import pytest

from connectus_worker.campaign.model import CampaignState, Window
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.jobs import Finish, JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.worker.campaign_messages import BULK_ACTOR, recipient_message
from connectus_worker.worker.campaigns import CampaignPump
from tests.support.clock import Clock

S = CampaignState
# 2026-11-23 12:00 in Santiago (UTC-3 in summer) = 15:00 UTC.
NOON = int(datetime(2026, 11, 23, 15, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def store(client: fakeredis.FakeRedis, clock: Clock) -> CampaignStore:
    return CampaignStore(client, Keys("t"), ttl_s=3600, job_ttl_s=600, clock=clock)


def _campaign(store: CampaignStore, *, total: int = 5, chunk: int = 2, transport: str = "v3",
              deliver_at: int = NOON, window: str = "", late_s: int = 0) -> str:  # fmt: skip
    rows = [[f"5698765{i:04d}", f"n{i}"] for i in range(total)]
    store.write_batches("c1", [rows], chunk_size=chunk)
    fields = {"campaign_id": "c1", "name": "promo", "kind": "sms", "transport": transport,
              "state": "scheduled", "text": "Hola {name}", "subject": "",
              "fields": json.dumps(["name"]), "src": "", "timezone": "America/Santiago",
              "deliver_at": deliver_at, "window": window, "max_lateness_s": late_s,
              "total": total, "chunks": -(-total // chunk), "chunk_size": chunk, "cursor": 0,
              "segments": total, "created_at": NOON}  # fmt: skip
    store.commit("c1", fields, fingerprint="fp", idempotency_key=None)
    return "c1"


def _pump(store: CampaignStore, clock: Clock, max_pending: int = 1000) -> CampaignPump:
    return CampaignPump(store=store, queue="bulk", max_pending=max_pending, owner="w",
                        clock=clock, lock_ms=1)  # fmt: skip


def _tick(pump: CampaignPump, store: CampaignStore) -> int:
    store.client.delete(store.keys.campaign_pump("c1"))  # the lease of the last tick
    return pump.tick()


def _queued(client: fakeredis.FakeRedis) -> list[dict]:
    ids = client.lrange(Keys("t").queue("bulk"), 0, -1)
    return [json.loads(client.hget(Keys("t").queue_messages("bulk"), i)) for i in ids]


def test_nothing_happens_before_deliver_at(store, clock, client) -> None:
    _campaign(store, deliver_at=NOON + 60_000)
    pump = _pump(store, clock)
    assert _tick(pump, store) == 0
    assert store.get("c1").state is S.SCHEDULED and _queued(client) == []
    clock.now_ms += 60_000
    # Starts and, in the same tick, releases every chunk: 5 pending <= max_pending.
    assert _tick(pump, store) == 3
    assert store.get("c1").state is S.RUNNING and store.get("c1").started_ms == clock.now_ms
    assert _tick(pump, store) == 0
    messages = _queued(client)
    assert [m["kwargs"]["job"]["payload"]["sms_content"] for m in messages] == [
        f"Hola n{i}" for i in range(5)
    ]
    assert messages[0]["kwargs"]["job"]["job_id"] == "c1-0"


def test_release_stops_at_max_pending(store, clock, client) -> None:
    _campaign(store, total=3000, chunk=1000)
    pump = _pump(store, clock, max_pending=2000)
    assert _tick(pump, store) == 2
    assert store.get("c1").cursor == 2 and len(_queued(client)) == 2000
    assert _tick(pump, store) == 0  # 2,000 still pending


def test_bulk_transport_releases_one_message_per_chunk(store, clock, client) -> None:
    _campaign(store, transport="v1_bulk")
    pump = _pump(store, clock)
    _tick(pump, store)
    messages = _queued(client)
    assert [m["actor_name"] for m in messages] == [BULK_ACTOR] * 3
    assert [m["kwargs"]["chunk"]["chunk"] for m in messages] == [0, 1, 2]
    assert store.counts("c1") == {"queued": 5}
    # A recipient's single message can be rebuilt from the stored list.
    rebuilt = recipient_message(store, "c1-3", "bulk")
    assert rebuilt is not None
    assert rebuilt.kwargs["job"]["payload"] == {"dst_number": "56987650003",
                                                 "sms_content": "Hola n3"}  # fmt: skip
    assert recipient_message(store, "c1-99", "bulk") is None


def test_a_campaign_past_its_max_lateness_waits(store, clock, client) -> None:
    _campaign(store, deliver_at=NOON - 2 * 3600_000, late_s=3600)
    _tick(_pump(store, clock), store)
    campaign = store.get("c1")
    assert campaign.state is S.LATE and "late by 7200 s" in campaign.paused_reason
    assert _queued(client) == []


def test_the_window_closes_and_opens(store, clock, client) -> None:
    _campaign(store, total=6, window="09:00-12:30")
    pump = _pump(store, clock, max_pending=2)
    assert _tick(pump, store) == 1  # 12:00 local: inside the window
    assert store.get("c1").state is S.RUNNING
    clock.now_ms += 31 * 60_000  # 12:31 local
    assert _tick(pump, store) == 0
    assert store.get("c1").state is S.WINDOW and len(_queued(client)) == 2
    clock.now_ms += 21 * 3600_000  # 09:31 the next day
    _tick(pump, store)
    assert store.get("c1").state is S.RUNNING and store.get("c1").paused_reason is None


def test_a_window_that_opens_releases_in_the_same_tick(store, clock, client) -> None:
    _campaign(store, window="13:00-14:00")
    pump = _pump(store, clock)
    assert _tick(pump, store) == 0  # 12:00 local: started, waiting for its window
    assert store.get("c1").state is S.WINDOW and _queued(client) == []
    clock.now_ms += 61 * 60_000  # 13:01 local
    assert _tick(pump, store) == 3
    assert store.get("c1").state is S.RUNNING and len(_queued(client)) == 5


def test_finished_when_nothing_is_pending(store, clock, client) -> None:
    _campaign(store, total=2)
    pump = _pump(store, clock)
    _tick(pump, store)
    jobs = JobStore(client, Keys("t"), ttl_s=600, clock=clock)
    for job_id in ("c1-0", "c1-1"):
        claim = jobs.claim(job_id, worker_id="w", lease_ms=1000, token="t")
        jobs.finish(Finish(job_id, claim.fence, "done", {"state": "sent"}))
    _tick(pump, store)
    assert store.get("c1").state is S.FINISHED and store.active_ids() == []


@pytest.mark.parametrize(
    ("text", "local", "open_"),
    [
        ("09:00-21:00", "2026-11-23T08:59", False),
        ("09:00-21:00", "2026-11-23T09:00", True),
        ("09:00-21:00", "2026-11-23T21:00", False),
        ("22:00-06:00", "2026-11-23T23:30", True),
        ("22:00-06:00", "2026-11-24T05:59", True),
        ("22:00-06:00", "2026-11-24T12:00", False),
        ("18:00-24:00", "2026-11-24T23:59", True),
    ],
)
def test_window_membership(text: str, local: str, open_: bool) -> None:
    from zoneinfo import ZoneInfo

    when = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("America/Santiago"))
    assert Window.parse(text).is_open(when) is open_


@pytest.mark.parametrize("text", ["9-21", "09:00-09:00", "25:00-26:00", "09:00-24:30", ""])
def test_bad_windows_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^window: "):
        Window.parse(text)


def test_a_number_that_opted_out_since_acceptance_is_not_sent(store, clock, client) -> None:
    _campaign(store, total=3)
    client.sadd(Keys("t").opt_out, "56987650001")
    pump = _pump(store, clock)
    _tick(pump, store)
    _tick(pump, store)
    sent_to = [m["kwargs"]["job"]["payload"]["dst_number"] for m in _queued(client)]
    assert sent_to == ["56987650000", "56987650002"]
    record = JobStore(client, Keys("t"), ttl_s=600).get("c1-1")
    assert record is not None and record.state.value == "cancelled"
    assert record.error_class == "OptedOut"
    assert store.counts("c1") == {"queued": 2, "cancelled": 1}


@pytest.mark.parametrize("account", [None, "brand_b"])
def test_links_are_shortened_once_with_the_campaigns_own_account(
    store, clock, client, account: str | None
) -> None:
    _campaign(store)
    fields = {"text": "Hola {name} {link:https://example.com/promo}"}
    if account is not None:
        fields["account"] = account
    client.hset(store.keys.campaign("c1"), mapping=fields)
    calls: list[tuple[str, str | None]] = []

    def shorten(url: str, owner: str | None) -> tuple[str, str]:
        calls.append((url, owner))
        return "cnct.us/AbC123", "77"

    pump = CampaignPump(store=store, queue="bulk", max_pending=1000, owner="w", clock=clock,
                        lock_ms=1, shorten=shorten)  # fmt: skip
    assert _tick(pump, store) == 3
    _tick(pump, store)
    # Once per campaign, by the account that sends it: its listing reports the clicks.
    assert calls == [("https://example.com/promo", account)]
    assert store.get("c1").text == "Hola {name} cnct.us/AbC123"
