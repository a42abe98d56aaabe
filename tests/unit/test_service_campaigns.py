"""Campaigns over HTTP: POST /v1/campaigns, GET /v1/campaigns/{id}, the progress gauges."""

from __future__ import annotations

import itertools
from typing import Any

import fakeredis
import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectus_worker.campaign.model import CampaignState
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config.tenants import DEFAULT_TENANT
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.campaign_control import CampaignControl, CampaignStatusOut
from connectus_worker.producers.campaigns import CampaignProducer
from connectus_worker.service.campaign_schemas import CampaignAccepted, CampaignProblem
from connectus_worker.service.metrics import CAMPAIGN_RECIPIENT_STATES, CampaignCollector
from tests.support.service import (
    BEARER,
    CAMPAIGN,
    OTHER_TOKEN,
    RECIPIENTS,
    SMS,
    TOKEN,
    Service,
    invalid_params,
    make_settings,
    problem,
    service,
    store_of,
)

pytestmark = pytest.mark.anyio

#: Two bad rows among good ones: a number too short (line 2) and a missing field (line 4).
WITH_BAD_ROWS = [RECIPIENTS[0], {"dst_number": "12", "name": "B"}, RECIPIENTS[1],
                 {"dst_number": "56987654329"}]  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def post(svc: Service, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await svc.client.post("/v1/campaigns", json=body, headers={**BEARER, **headers})


def campaign_keys(svc: Service) -> list[bytes]:
    return sorted(svc.redis.keys(f"{svc.settings.key_prefix}:campaign*"))


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of an exposition text."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def recipients_gauge(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], campaign_id: str
) -> dict[str, float]:
    return {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "connectus_campaign_recipients" and dict(labels)["campaign"] == campaign_id
    }


# --- auth --------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer nope-0123456789abcdef", f"Basic {TOKEN}"])
async def test_without_a_valid_token_both_routes_are_401_and_store_nothing(
    authorization: str | None,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with service() as svc:
        posted = await svc.client.post("/v1/campaigns", json=CAMPAIGN, headers=headers)
        got = await svc.client.get("/v1/campaigns/abc", headers=headers)
        assert svc.redis.dbsize() == 0
    for response in (posted, got):
        problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


# --- accepted ------------------------------------------------------------------


async def test_a_campaign_is_accepted_and_reads_back() -> None:
    async with service() as svc:
        posted = await post(svc, {**CAMPAIGN, "window": "09:00-21:00", "transport": "v3"})
        assert posted.status_code == 202, posted.text
        body = posted.json()
        campaign_id = body["campaign_id"]
        got = await svc.client.get(f"/v1/campaigns/{campaign_id}", headers=BEARER)
        stored = store_of(svc).get(campaign_id)
    CampaignAccepted.model_validate(body)  # the documented shape, extra members refused
    assert posted.headers["location"] == f"/v1/campaigns/{campaign_id}"
    assert body["created"] is True
    plan = body["plan"]
    assert (plan["rows"], plan["valid"], plan["invalid"], plan["refusals"]) == (3, 3, 0, [])
    assert (plan["kind"], plan["transport"], plan["window"]) == ("sms", "v3", "09:00-21:00")
    # No worker published a balance snapshot here: unknown, and no refusal.
    assert plan["balances"] == [
        {"source": "balance unknown: no recent balance snapshot from the workers",
         "available": None}]  # fmt: skip
    assert got.status_code == 200, got.text
    status = CampaignStatusOut.model_validate(got.json()).model_dump()
    assert status["campaign_id"] == campaign_id and status["state"] == "scheduled"
    assert (status["total"], status["released"], status["counts"]) == (3, 0, {"pending": 3})
    assert stored is not None and stored.name == "Promo" and stored.fields == ("name",)


@pytest.mark.parametrize(
    ("kind", "extra", "recipient"),
    [
        ("email", {"subject": "Hola {name}"}, {"dst_email": "Ana@Example.com", "name": "Ana"}),
        ("whatsapp", {"src": 56999944837}, {"dst_number": "56987654321", "name": "Ana"}),
    ],
)
async def test_email_and_whatsapp_campaigns_are_accepted(
    kind: str, extra: dict[str, Any], recipient: dict[str, Any]
) -> None:
    async with service() as svc:
        body = {**CAMPAIGN, "kind": kind, **extra, "recipients": [recipient]}
        posted = await post(svc, body)
        stored = store_of(svc).get(posted.json()["campaign_id"])
    assert posted.status_code == 202, posted.text
    assert posted.json()["plan"]["transport"] == "v3"
    assert stored is not None and stored.kind.value == kind
    if kind == "whatsapp":
        assert stored.src == "56999944837"  # an integer origin is kept as its digits
    else:
        assert stored.src == "contacto@empresa.cl"  # CONNECTUS_DEFAULT_SRC_EMAIL


# --- invalid input ------------------------------------------------------------------

SHAPE_ERRORS: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"name": ""}, {"name": "is empty"}),
    ({"kind": "fax"}, {"kind": "must be 'sms', 'email' or 'whatsapp'"}),
    ({"kind": None}, {"kind": "must be 'sms', 'email' or 'whatsapp'"}),
    ({"text": 3}, {"text": "must be a string"}),
    ({"colour": "red"}, {"colour": "is not a field of a campaign"}),
    ({"transport": "v2"}, {"transport": "must be 'v3' or 'v1_bulk'"}),
    ({"skip_invalid": "yes"}, {"skip_invalid": "must be true or false"}),
    ({"max_lateness_s": -1}, {"max_lateness_s": "must be 0 (no limit) or a number of seconds"}),
    ({"src": [1]}, {"src": "must be a string or an integer"}),
    (
        {"recipients": []},
        {"recipients": "List should have at least 1 item after validation, not 0"},
    ),
    ({"recipients": {"dst_number": "1"}}, {"recipients": "must be an array of recipient objects"}),
    (
        {"recipients": [RECIPIENTS[0], "56987654321", {"dst_number": {"n": 1}}, {"": "x"}, {}]},
        {
            "recipients.1": "must be an object (column: value)",
            "recipients.2.dst_number": "must be text, a number, true/false or null",
            "recipients.3": "has a column name that is empty or longer than 64 characters",
            "recipients.4": "Dictionary should have at least 1 item after validation, not 0",
        },
    ),
]


@pytest.mark.parametrize(("change", "expected"), SHAPE_ERRORS)
async def test_shape_errors_name_every_bad_field_and_store_nothing(
    change: dict[str, Any], expected: dict[str, str]
) -> None:
    async with service() as svc:
        response = await post(svc, {**CAMPAIGN, **change})
        assert svc.redis.dbsize() == 0
    assert invalid_params(response) == expected


async def test_missing_required_fields_are_named() -> None:
    async with service() as svc:
        response = await post(svc, {"subject": "x"})
    assert invalid_params(response) == {
        "name": "is required", "kind": "is required", "text": "is required",
        "recipients": "is required",
    }  # fmt: skip


OPTION_ERRORS: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"text": "Hola {"}, {"text": "has unbalanced or malformed braces"}),
    ({"name": "   "}, {"name": "must be 1 to 200 characters"}),
    ({"kind": "email"}, {"subject": "is required for an e-mail campaign"}),
    ({"kind": "email", "subject": "s", "src": "nope"}, {"src": "is not a valid e-mail address"}),
    ({"kind": "whatsapp"}, {"src": "a WhatsApp campaign needs src_number"}),
    ({"window": "9-5"}, {"window": "must look like 09:00-21:00"}),
    ({"deliver_at": "ayer"}, {"deliver_at": "is not a date and time"}),
    ({"id_client": "c1"}, {"id_client": "v1 send_sms_bulk can't charge a subclient"}),
]


@pytest.mark.parametrize(("change", "expected"), OPTION_ERRORS)
async def test_the_producers_option_errors_name_the_body_fields(
    change: dict[str, Any], expected: dict[str, str]
) -> None:
    async with service() as svc:
        response = await post(svc, {**CAMPAIGN, **change})
        assert campaign_keys(svc) == []
    params = invalid_params(response)
    assert params.keys() == expected.keys()
    for name, start in expected.items():
        assert params[name].startswith(start), params


#: Bad options every door refuses alike (one model, campaign.options): field -> value.
SHARED_ERRORS: list[tuple[str, Any]] = [
    ("kind", "fax"), ("transport", "v2"), ("max_lateness_s", -1), ("window", ["09:00"]),
    ("name", ""), ("skip_invalid", 1), ("src", [1]), ("deliver_at", 5),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), SHARED_ERRORS)
async def test_the_http_body_and_the_producers_name_a_bad_option_alike(
    field: str, value: Any
) -> None:
    async with service() as svc:
        response = await post(svc, {**CAMPAIGN, field: value})
        given = {name: v for name, v in {**CAMPAIGN, field: value}.items() if name != "recipients"}
        with pytest.raises(InvalidInput) as refused:
            CampaignProducer(svc.settings, redis_client=svc.redis).send(
                RECIPIENTS, CampaignOptions(**given)
            )
        assert campaign_keys(svc) == []
    assert [(e.field, e.reason) for e in refused.value.errors] == list(
        invalid_params(response).items()
    )
    assert [e.field for e in refused.value.errors] == [field]


async def test_bad_rows_refuse_the_campaign_with_lines_and_store_nothing() -> None:
    async with service() as svc:
        response = await post(svc, {**CAMPAIGN, "recipients": WITH_BAD_ROWS})
        assert campaign_keys(svc) == []  # its chunks were written, then deleted
    body = problem(response, 422)
    CampaignProblem.model_validate(body)
    assert body["title"] == "Campaign refused"
    assert body["invalid_rows"] == [
        {"line": 2, "field": "dst_number", "reason": "is too short"},
        {"line": 4, "field": "name", "reason": "is required by the template but missing"},
    ]
    assert invalid_params(response) == {
        "recipients.1.dst_number": "is too short",
        "recipients.3.name": "is required by the template but missing",
    }
    (refusal,) = body["refusals"]
    assert refusal.startswith("2 invalid rows (first: line 2") and '"skip_invalid": true' in refusal
    assert "--skip-invalid" not in body["detail"]
    assert (body["plan"]["rows"], body["plan"]["valid"], body["plan"]["invalid"]) == (4, 2, 2)
    assert "invalid_rows" not in body["plan"] and "refusals" not in body["plan"]


async def test_skip_invalid_accepts_the_valid_rows_and_reports_the_others() -> None:
    async with service() as svc:
        response = await post(svc, {**CAMPAIGN, "recipients": WITH_BAD_ROWS, "skip_invalid": True})
        status = await svc.client.get(f"/v1/campaigns/{response.json()['campaign_id']}",
                                      headers=BEARER)  # fmt: skip
    assert response.status_code == 202, response.text
    plan = response.json()["plan"]
    assert (plan["valid"], plan["invalid"], plan["refusals"]) == (2, 2, [])
    assert [row["line"] for row in plan["invalid_rows"]] == [2, 4]
    assert status.json()["total"] == 2


async def test_a_list_without_any_valid_recipient_is_refused_even_with_skip_invalid() -> None:
    async with service() as svc:
        body = {**CAMPAIGN, "recipients": [{"dst_number": "12", "name": "x"}], "skip_invalid": True}
        response = await post(svc, body)
        assert campaign_keys(svc) == []
    assert "no valid recipients" in problem(response, 422)["refusals"]


async def test_duplicates_are_counted_and_the_first_row_kept() -> None:
    async with service() as svc:
        rows = [RECIPIENTS[0], {"dst_number": "56987654321", "name": "Otra"}]
        response = await post(svc, {**CAMPAIGN, "recipients": rows})
    plan = response.json()["plan"]
    assert (plan["valid"], plan["duplicates"]) == (1, 1)
    assert plan["duplicate_rows"] == [{"line": 2, "first_line": 1}]


async def test_body_limit_content_type_and_json_errors() -> None:
    async with service(INTAKE_MAX_BODY_BYTES="2048") as svc:
        many = [{"dst_number": f"569876543{i:02d}", "name": "x"} for i in range(60)]
        big = await post(svc, {**CAMPAIGN, "recipients": many})
        text = await svc.client.post("/v1/campaigns", content=b"{}", headers={**BEARER,
                                     "Content-Type": "text/plain"})  # fmt: skip
        broken = await svc.client.post("/v1/campaigns", content=b"{", headers={**BEARER,
                                       "Content-Type": "application/json"})  # fmt: skip
        assert svc.redis.dbsize() == 0
    problem(big, 413)
    problem(text, 415)
    problem(broken, 400)


# --- idempotency --------------------------------------------------------------------


async def test_same_key_same_body_replays_and_creates_one_campaign() -> None:
    async with service() as svc:
        first = await post(svc, CAMPAIGN, **{"Idempotency-Key": "promo-1"})
        again = await post(svc, CAMPAIGN, **{"Idempotency-Key": "promo-1"})
        campaigns = svc.redis.zcard(f"{svc.settings.key_prefix}:campaigns")
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert campaigns == 1


async def test_same_key_different_body_is_422_naming_the_header() -> None:
    async with service() as svc:
        first = await post(svc, CAMPAIGN, **{"Idempotency-Key": "promo-2"})
        other = await post(svc, {**CAMPAIGN, "name": "Otra"}, **{"Idempotency-Key": "promo-2"})
        campaigns = svc.redis.zcard(f"{svc.settings.key_prefix}:campaigns")
    assert first.status_code == 202
    assert invalid_params(other) == {"Idempotency-Key": "was already used with a different body"}
    assert campaigns == 1


async def test_a_key_used_for_a_message_is_not_reused_for_a_campaign() -> None:
    async with service() as svc:
        message = await svc.send(SMS, **{"Idempotency-Key": "shared-1"})
        campaign = await post(svc, CAMPAIGN, **{"Idempotency-Key": "shared-1"})
    assert message.status_code == 202
    assert invalid_params(campaign) == {"Idempotency-Key": "was already used with a different body"}


async def test_the_key_is_the_campaigns_own_idempotency_key() -> None:
    async with service() as svc:
        first = await post(svc, CAMPAIGN, **{"Idempotency-Key": "promo-3"})
        # The stored HTTP answers expire (INTAKE_IDEMPOTENCY_TTL_S); the campaign's key
        # stays, and the producer recognises the campaign (another client of the tenant).
        svc.redis.delete(*svc.redis.keys(f"{svc.settings.key_prefix}:http-idem:*"))
        other = {"Authorization": f"Bearer {OTHER_TOKEN}", "Idempotency-Key": "promo-3"}
        same = await svc.client.post("/v1/campaigns", json=CAMPAIGN, headers=other)
        svc.redis.delete(*svc.redis.keys(f"{svc.settings.key_prefix}:http-idem:*"))
        different = await svc.client.post(
            "/v1/campaigns", json={**CAMPAIGN, "text": "Chao {name}"}, headers=other
        )
        campaigns = svc.redis.zcard(f"{svc.settings.key_prefix}:campaigns")
        chunks = svc.redis.keys(f"{svc.settings.key_prefix}:campaign:*:chunk:*")
    assert first.json()["created"] is True
    assert same.status_code == 202 and "idempotent-replayed" not in same.headers
    assert same.json()["campaign_id"] == first.json()["campaign_id"]
    assert same.json()["created"] is False
    assert invalid_params(different) == {
        "Idempotency-Key": "was already used for a different campaign"
    }
    # Nothing beyond "different body" (issue 21): not the other campaign's id.
    assert first.json()["campaign_id"] not in different.text
    assert different.json()["detail"] == (
        "this Idempotency-Key was already used with a different request body"
    )
    assert campaigns == 1 and len(chunks) == 1  # the second copy's chunks were discarded


async def test_in_flight_is_409_and_a_refusal_is_not_stored() -> None:
    async with service() as svc:
        marker = Keys(svc.settings.key_prefix).http_lock(DEFAULT_TENANT, "promo-4")
        svc.redis.set(marker, "someone-else", px=30_000)
        busy = await post(svc, CAMPAIGN, **{"Idempotency-Key": "promo-4"})
        svc.redis.delete(marker)
        refused = await post(
            svc, {**CAMPAIGN, "recipients": WITH_BAD_ROWS}, **{"Idempotency-Key": "promo-4"}
        )
        # The refusal was not stored: the corrected list goes through with the same key.
        fixed = await post(
            svc,
            {**CAMPAIGN, "recipients": WITH_BAD_ROWS, "skip_invalid": True},
            **{"Idempotency-Key": "promo-4"},
        )
    assert "still in progress" in problem(busy, 409)["detail"]
    assert problem(refused, 422)["title"] == "Campaign refused"
    assert fixed.status_code == 202, fixed.text


async def test_a_malformed_key_is_422() -> None:
    async with service() as svc:
        response = await post(svc, CAMPAIGN, **{"Idempotency-Key": "x" * 201})
        assert svc.redis.dbsize() == 0
    assert list(invalid_params(response)) == ["Idempotency-Key"]


# --- status -------------------------------------------------------------------------


@pytest.mark.parametrize("campaign_id", ["0123456789abcdef", "x" * 65, "a.b", "%20"])
async def test_unknown_or_malformed_ids_are_404(campaign_id: str) -> None:
    async with service() as svc:
        response = await svc.client.get(f"/v1/campaigns/{campaign_id}", headers=BEARER)
    problem(response, 404)


async def test_status_follows_progress_and_cancellation() -> None:
    async with service() as svc:
        campaign_id = (await post(svc, {**CAMPAIGN, "transport": "v3"})).json()["campaign_id"]
        store = store_of(svc)
        # What the workers do: start it, release the chunk (3 jobs), send two.
        started = store.transition(campaign_id, CampaignState.RUNNING,
                                    allowed_from={CampaignState.SCHEDULED})  # fmt: skip
        assert started.status == "ok"
        svc.redis.hset(svc.keys.campaign(campaign_id), "cursor", 1)
        svc.redis.hset(svc.keys.campaign_counts(campaign_id), mapping={"sent": 2, "queued": 1})
        running = (await svc.client.get(f"/v1/campaigns/{campaign_id}", headers=BEARER)).json()
        other = (await post(svc, {**CAMPAIGN, "name": "Otra"})).json()["campaign_id"]
        CampaignControl(store).cancel(other)
        cancelled = (await svc.client.get(f"/v1/campaigns/{other}", headers=BEARER)).json()
    assert running["state"] == "running" and running["released"] == 3
    assert running["counts"] == {"sent": 2, "queued": 1}
    assert cancelled["state"] == "cancelled" and cancelled["counts"] == {"cancelled": 3}


# --- metrics -------------------------------------------------------------------------


async def test_metrics_show_each_campaigns_recipients_and_state() -> None:
    async with service(METRICS_CAMPAIGN_LABELS="true") as svc:
        running = (await post(svc, {**CAMPAIGN, "transport": "v3"})).json()["campaign_id"]
        store = store_of(svc)
        store.transition(running, CampaignState.RUNNING, allowed_from={CampaignState.SCHEDULED})
        svc.redis.hset(svc.keys.campaign(running), "cursor", 1)
        svc.redis.hset(svc.keys.campaign_counts(running),
                       mapping={"sent": 1, "failed": 1, "retrying": 1})  # fmt: skip
        cancelled = (await post(svc, {**CAMPAIGN, "name": "Otra"})).json()["campaign_id"]
        CampaignControl(store).cancel(cancelled)
        response = await svc.client.get("/metrics")
    assert response.status_code == 200
    samples = scrape(response.text)
    assert samples[("connectus_campaign_redis_up", ())] == 1
    zero = dict.fromkeys(CAMPAIGN_RECIPIENT_STATES, 0.0)
    assert recipients_gauge(samples, running) == {**zero, "sent": 1, "failed": 1, "retrying": 1}
    assert recipients_gauge(samples, cancelled) == {**zero, "cancelled": 3}
    states = {
        (dict(labels)["campaign"], dict(labels)["state"]): value
        for (name, labels), value in samples.items()
        if name == "connectus_campaign_state"
    }
    assert len(states) == 2 * len(CampaignState)
    assert {key for key, value in states.items() if value == 1} == {
        (running, "running"), (cancelled, "cancelled"),
    }  # fmt: skip
    info_labels = (("campaign", running), ("kind", "sms"), ("name", "Promo"), ("transport", "v3"))
    assert samples[("connectus_campaign_info", info_labels)] == 1


async def test_metrics_name_no_campaign_unless_metrics_campaign_labels_is_on() -> None:
    # /metrics is unauthenticated (issue 21, Medium 3): campaign ids and names are
    # exported there only when METRICS_CAMPAIGN_LABELS=true.
    async with service() as svc:
        accepted = await post(svc, {**CAMPAIGN, "name": "Promo secreta"})
        campaign_id = accepted.json()["campaign_id"]
        response = await svc.client.get("/metrics")
    assert accepted.status_code == 202 and response.status_code == 200
    assert "connectus_http_requests_total" in response.text  # the rest is there
    assert "connectus_campaign_" not in response.text
    assert campaign_id not in response.text and "Promo secreta" not in response.text


def test_the_collector_keeps_unfinished_campaigns_first_within_its_limit() -> None:
    settings = make_settings()
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    ticks = itertools.count(1_000_000)
    producer = CampaignProducer(settings, redis_client=redis, clock=lambda: next(ticks))
    control = CampaignControl(producer.store)
    ids = [
        producer.send(RECIPIENTS, CampaignOptions(name=f"c{n}", text="Hola {name}")).campaign_id
        for n in range(4)
    ]  # created in this order (the clock ticks)
    for campaign_id in ids[1:]:
        control.cancel(campaign_id)  # ids[0], the oldest, is the only unfinished one
    registry = CollectorRegistry()
    registry.register(CampaignCollector(producer.store, limit=2))
    samples = scrape(generate_latest(registry).decode())
    shown = {dict(labels)["campaign"] for (name, labels) in samples if name.endswith("_info")}
    assert shown == {ids[0], ids[3]}  # the unfinished one, then the newest


def test_a_redis_outage_leaves_the_campaign_gauges_out_without_failing_the_scrape() -> None:
    server = fakeredis.FakeServer()
    producer = CampaignProducer(make_settings(), redis_client=fakeredis.FakeRedis(server=server))
    producer.send(RECIPIENTS, CampaignOptions(name="c", text="Hola {name}"))
    registry = CollectorRegistry()
    registry.register(CampaignCollector(producer.store))
    server.connected = False
    samples = scrape(generate_latest(registry).decode())
    assert samples == {("connectus_campaign_redis_up", ()): 0}
