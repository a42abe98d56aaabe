# ruff: noqa: F401, F811 (the fixtures of tests/support/bulk.py are imported and used by name)
"""A v1 bulk chunk's attempts are traced (worker.bulk.BulkSender, fakeredis, the SDK's
in-memory exporter): one consumer span per attempt with the campaign, the chunk, the
attempt and the outcome, the Connectus call below it, and no number or text anywhere."""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

import connectus_worker.tracing as tracing
from connectus_worker.campaign.store import CampaignStore
from connectus_worker.ledger.jobs import JobStore
from tests.support.bulk import (
    CID,
    DSTS,
    all_sent,
    bulk_sender,
    campaigns,
    client,
    clock,
    jobs,
    released,
)
from tests.support.clock import Clock
from tests.support.tracing import leaks, recorded_spans

CHUNK_SPAN = "send sms bulk chunk"


def _chunk_spans(spans: tuple[ReadableSpan, ...]) -> list[dict[str, Any]]:
    found = [s for s in spans if s.name == CHUNK_SPAN]
    assert {s.kind for s in found} <= {SpanKind.CONSUMER}
    return [dict(s.attributes or {}) for s in found]


def test_each_chunk_attempt_is_a_span_with_its_outcome_and_nothing_personal(
    released: str, campaigns: CampaignStore, jobs: JobStore, clock: Clock, client: Any
) -> None:
    with recorded_spans() as exporter:
        sender, recorder = bulk_sender(campaigns, jobs, clock, httpx.Response(503, json={}),
                                       all_sent(), on_client=tracing.instrument_http_client)  # fmt: skip
        assert sender.handle(released, 0) == "retrying"
        clock.now_ms += 60_000  # past the backoff: the chunk's message is back
        assert sender.handle(released, 0) == "sent:5"
        spans = exporter.get_finished_spans()
    assert len(recorder.requests) == 2
    first, second = _chunk_spans(spans)
    common = {"connectus.campaign_id": CID, "connectus.chunk": 0, "connectus.queue": "bulk"}
    assert first == {**common, "connectus.attempt": 1, "connectus.outcome": "retrying",
                     "connectus.error": "ServiceUnavailable", "connectus.reason": "http_503"}  # fmt: skip
    assert second == {**common, "connectus.attempt": 2, "connectus.outcome": "sent:5"}
    # Each Connectus call is a client span below its attempt's span.
    chunk_ids = {s.context.span_id for s in spans if s.name == CHUNK_SPAN}
    calls = [s for s in spans if "http.url" in (s.attributes or {})]
    assert [(s.attributes or {})["http.url"] for s in calls] == [
        "https://api.test/api_v1/send_sms_bulk"
    ] * 2  # cut to scheme, host and path
    assert all(s.parent is not None and s.parent.span_id in chunk_ids for s in calls)
    # The chunk's Redis commands are below it too (recorded, not dropped as parentless).
    assert any("db.system" in (s.attributes or {}) and s.parent is not None
               and s.parent.span_id in chunk_ids for s in spans)  # fmt: skip
    # The v1 call carries the numbers and texts in its query string: in no span.
    assert leaks(spans, *DSTS, *(d[-8:] for d in DSTS), "Hola n") == []


def test_a_chunk_of_a_missing_campaign_is_a_span_too(
    campaigns: CampaignStore, jobs: JobStore, clock: Clock
) -> None:
    with recorded_spans() as exporter:
        sender, recorder = bulk_sender(campaigns, jobs, clock, all_sent())
        assert sender.handle("no-such-campaign", 3) == "missing"
        spans = exporter.get_finished_spans()
    assert recorder.requests == []
    assert _chunk_spans(spans) == [{"connectus.campaign_id": "no-such-campaign",
                                    "connectus.chunk": 3, "connectus.queue": "bulk",
                                    "connectus.outcome": "missing"}]  # fmt: skip
