"""producers.campaigns.CampaignProducer on fakeredis: preflight, accept, refusals and
their clean-up, idempotency, the balance check, v1 numbers, iterable sources, e-mail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from connectus_worker.campaign.model import Balance, CampaignState, Transport
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.campaign.store import CHUNK_SIZE, CampaignConflict
from connectus_worker.config import Settings, load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.producers.campaigns import CampaignProducer, CampaignRefused

PREFIX = "t"
OPTIONS = CampaignOptions(name="Promo", text="Hola {name}")
LONG = "C" * 170  # "Hola " + 170 characters: two SMS segments


@pytest.fixture
def settings() -> Settings:
    return load_settings({"KEY_PREFIX": PREFIX})


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def producer(settings: Settings, redis_client: fakeredis.FakeRedis) -> CampaignProducer:
    return CampaignProducer(settings, redis_client=redis_client)


class FakeBalance:
    """A balance lookup: the same ``available`` for every balance; records its calls."""

    def __init__(self, available: int | None) -> None:
        self.available = available
        self.calls: list[tuple[Kind, str | None, int | None]] = []
        self.transports: set[Transport] = set()
        self.accounts: set[str] = set()

    def of(self, account: str) -> FakeBalance:
        """The lookup of ``account``'s balances (the producer asks per campaign)."""
        self.accounts.add(account)
        return self

    def __call__(
        self, kind: Kind, id_client: str | None, country: int | None, transport: Transport
    ) -> Balance:
        self.calls.append((kind, id_client, country))
        self.transports.add(transport)
        return Balance(f"fake balance of country {country}", self.available)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    """Line 2 valid, 3 a bad number, 4 a missing template field, 5 a duplicate of 2,
    6 valid (two segments). ``city`` is not used by the template."""
    path = tmp_path / "clients.csv"
    path.write_text(
        "dst_number,name,city\n"
        "+56 9 8765 4321,Ana,Arica\n"
        "12345,Bob,Calama\n"
        "56987654322,,Talca\n"
        "56987654321,Ana again,Arica\n"
        f"56987654323,{LONG},Temuco\n",
        encoding="utf-8",
    )
    return path


def _rows(count: int, start: int = 0) -> list[dict[str, str]]:
    return [{"dst_number": f"569{87000000 + start + i:08d}", "name": f"n{i}"} for i in range(count)]


def _chunk_keys(client: fakeredis.FakeRedis) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(f"{PREFIX}:campaign:*:chunk:*"))


def test_preflight_counts_rows_and_stores_nothing(
    producer: CampaignProducer, csv_file: Path, redis_client: fakeredis.FakeRedis
) -> None:
    plan = producer.preflight(csv_file, OPTIONS)
    report = plan.report
    assert (report.rows, report.valid, report.duplicates) == (5, 2, 1)
    assert [(i.line, i.field) for i in report.invalid] == [(3, "dst_number"), (4, "name")]
    assert report.invalid[1].reason == "is required by the template but empty"
    assert report.duplicate_lines == [(5, 2)]
    assert (report.segments, report.max_segments, plan.cost) == (3, 2, 3)
    assert plan.segments_by_country == {1: 3}  # Chile
    assert plan.transport is Transport.V1_BULK
    assert plan.refusals == [
        "2 invalid rows (first: line 3, dst_number: is too short); fix them or use --skip-invalid"
    ]
    body = plan.to_json()
    assert body["invalid_rows"][0] == {"line": 3, "field": "dst_number", "reason": "is too short"}
    assert body["duplicate_rows"] == [{"line": 5, "first_line": 2}]
    assert redis_client.dbsize() == 0
    # With skip_invalid the same list passes.
    skipping = CampaignOptions(name="Promo", text="Hola {name}", skip_invalid=True)
    assert producer.preflight(csv_file, skipping).refusals == []


def test_a_refused_list_leaves_no_chunks(
    producer: CampaignProducer, redis_client: fakeredis.FakeRedis
) -> None:
    # Three chunks are written while streaming before the bad row at the end is met.
    rows = [*_rows(2 * CHUNK_SIZE + 500), {"dst_number": "12", "name": "bad"}]
    with pytest.raises(CampaignRefused, match="1 invalid rows") as refused:
        producer.send(rows, OPTIONS)
    assert refused.value.plan.report.valid == 2_500
    assert _chunk_keys(redis_client) == []
    assert redis_client.dbsize() == 0


def test_a_file_error_midway_leaves_no_chunks(
    producer: CampaignProducer, redis_client: fakeredis.FakeRedis, tmp_path: Path
) -> None:
    # Chunks are written 20 at a time: more than that are stored before the bad line.
    path = tmp_path / "big.csv"
    lines = [f"{r['dst_number']},{r['name']}" for r in _rows(21 * CHUNK_SIZE + 10)]
    path.write_bytes(("dst_number,name\n" + "\n".join(lines) + "\n").encode() + b"5698\xff,x\n")
    written: list[int] = []
    with pytest.raises(InvalidInput, match=r"^file: is not UTF-8 text"):
        producer.send(path, OPTIONS, progress=written.append)
    assert written and written[0] == 20 * CHUNK_SIZE  # chunks were stored, then ...
    assert _chunk_keys(redis_client) == []  # ... deleted
    assert redis_client.dbsize() == 0


def test_skip_invalid_accepts_the_valid_rows_with_only_the_template_fields(
    producer: CampaignProducer, csv_file: Path, redis_client: fakeredis.FakeRedis
) -> None:
    progress: list[int] = []
    options = CampaignOptions(name=" Promo ", text="Hola {name}", skip_invalid=True)
    accepted = producer.send(csv_file, options, progress=progress.append)
    assert accepted.created and progress == [2]
    campaign = producer.get(accepted.campaign_id)
    assert campaign is not None
    assert (campaign.name, campaign.state, campaign.transport) == (
        "Promo", CampaignState.SCHEDULED, Transport.V1_BULK)  # fmt: skip
    assert (campaign.total, campaign.chunks, campaign.segments, campaign.fields) == (
        2, 1, 3, ("name",))  # fmt: skip
    record = redis_client.hgetall(f"{PREFIX}:campaign:{accepted.campaign_id}")
    assert (record[b"invalid"], record[b"duplicates"]) == (b"2", b"1")
    assert producer.store.chunk(accepted.campaign_id, 0) == [
        ["56987654321", "Ana"], ["56987654323", LONG]]  # fmt: skip
    assert producer.store.active_ids() == [accepted.campaign_id]
    assert _chunk_keys(redis_client) == [f"{PREFIX}:campaign:{accepted.campaign_id}:chunk:0"]


def test_the_same_idempotency_key_and_rows_return_the_first_campaign(
    producer: CampaignProducer, redis_client: fakeredis.FakeRedis
) -> None:
    options = CampaignOptions(name="Promo", text="Hola {name}", idempotency_key="promo-1")
    rows = _rows(CHUNK_SIZE + 1)
    first = producer.send(rows, options)
    chunks = _chunk_keys(redis_client)
    assert first.created and len(chunks) == 2
    again = producer.send(rows, options)
    assert (again.campaign_id, again.created) == (first.campaign_id, False)
    assert _chunk_keys(redis_client) == chunks  # no second set of chunks
    assert [c.campaign_id for c in producer.store.recent()] == [first.campaign_id]
    # Different rows, or a different definition, under the same key: refused.
    with pytest.raises(CampaignConflict, match=f"already used by campaign {first.campaign_id}"):
        producer.send(_rows(CHUNK_SIZE + 1, start=1), options)
    other_text = CampaignOptions(name="Promo", text="Chao {name}", idempotency_key="promo-1")
    with pytest.raises(CampaignConflict):
        producer.send(rows, other_text)
    assert _chunk_keys(redis_client) == chunks
    assert [c.campaign_id for c in producer.store.recent()] == [first.campaign_id]


def test_a_bad_idempotency_key_is_refused_before_anything_is_stored(
    producer: CampaignProducer, redis_client: fakeredis.FakeRedis
) -> None:
    options = CampaignOptions(name="Promo", text="Hola {name}", idempotency_key="a b")
    with pytest.raises(InvalidInput) as bad:
        producer.send(_rows(3), options)
    assert bad.value.field == "idempotency_key"
    assert redis_client.dbsize() == 0


def test_a_cost_over_the_balance_is_refused_unless_forced(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    balance = FakeBalance(available=2)
    producer = CampaignProducer(settings, redis_client=redis_client, balance=balance.of)
    rows = _rows(3)
    plan = producer.preflight(rows, OPTIONS)
    assert plan.refusals == [
        "cost 3 exceeds fake balance of country 1 (2); use --force to send anyway"
    ]
    assert plan.to_json()["balances"] == [{"source": "fake balance of country 1", "available": 2}]
    with pytest.raises(CampaignRefused, match="cost 3 exceeds"):
        producer.send(rows, OPTIONS)
    assert redis_client.dbsize() == 0
    forced = producer.send(rows, CampaignOptions(name="Promo", text="Hola {name}", force=True))
    assert forced.created and forced.plan.refusals == []
    assert producer.get(forced.campaign_id) is not None
    assert set(balance.calls) == {(Kind.SMS, None, 1)}
    assert balance.transports == {Transport.V1_BULK}  # v1 has its own balance call
    assert balance.accounts == {"default"}  # the account that sends it
    # Enough balance: accepted without force; a WhatsApp balance nobody can ask is no refusal.
    assert CampaignProducer(settings, redis_client=redis_client,
                            balance=FakeBalance(3).of).preflight(rows, OPTIONS).refusals == []  # fmt: skip
    unknown = FakeBalance(None)
    wa = CampaignOptions(name="wa", text="Hola {name}", kind=Kind.WHATSAPP, src="56999944837")
    producer = CampaignProducer(settings, redis_client=redis_client, balance=unknown.of)
    assert producer.preflight(rows, wa).refusals == []
    assert unknown.calls == [(Kind.WHATSAPP, None, None)]


def test_v1_bulk_takes_chilean_mobiles_only_and_v3_takes_any_valid_number(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    balance = FakeBalance(available=1_000)
    producer = CampaignProducer(settings, redis_client=redis_client, balance=balance.of)
    rows = [{"dst_number": "+56 9 8765 4321", "name": "cl"},
            {"dst_number": "+54 9 11 2345-6789", "name": "ar"},
            {"dst_number": "+52 55 1234 5678", "name": "mx"}]  # fmt: skip
    v1 = producer.preflight(rows, OPTIONS)
    assert v1.report.valid == 1 and v1.segments_by_country == {1: 1}
    assert [(i.line, i.field) for i in v1.report.invalid] == [(2, "dst_number"), (3, "dst_number")]
    assert "Chilean mobiles (569...) only; use v3" in v1.report.invalid[0].reason
    assert (v1.report.segments, v1.cost) == (1, 1)
    v3_options = CampaignOptions(name="Promo", text="Hola {name}", transport=Transport.V3)
    v3 = producer.preflight(rows, v3_options)
    assert v3.report.valid == 3 and v3.report.invalid == []
    assert v3.segments_by_country == {1: 1, 7: 1, 2: 1}  # Chile, Argentina, Mexico
    assert {call[2] for call in balance.calls} == {1, 7, 2}
    accepted = producer.send(rows, v3_options)
    assert producer.store.chunk(accepted.campaign_id, 0)[1] == ["5491123456789", "ar"]


def test_an_iterable_source_is_read_once_lazily(
    producer: CampaignProducer, redis_client: fakeredis.FakeRedis
) -> None:
    pulled: list[int] = []

    def source() -> Iterator[Any]:
        for i, row in enumerate(_rows(3)):
            pulled.append(i)
            yield row
        yield ["56987654399", "not a mapping"]
        yield {"dst_number": 56987654399, "name": "a number", "unused": None}

    rows = source()
    options = CampaignOptions(name="gen", text="Hola {name}", skip_invalid=True)
    assert pulled == []  # nothing read before send
    accepted = producer.send(rows, options)
    report = accepted.plan.report
    assert (report.rows, report.valid) == (5, 4)
    assert [(i.line, i.field) for i in report.invalid] == [(4, "row")]
    assert "not a mapping" in report.invalid[0].reason
    stored = producer.store.chunk(accepted.campaign_id, 0)
    assert stored[-1] == ["56987654399", "a number"]
    assert next(rows, None) is None  # consumed once


def test_an_email_campaign_needs_a_subject_and_a_sender(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    producer = CampaignProducer(settings, redis_client=redis_client)
    rows = [{"dst_email": "ana@example.com", "name": "Ana"}, {"dst_email": "nope", "name": "B"}]
    bare = CampaignOptions(name="mail", kind=Kind.EMAIL, text="<p>Hola {name}</p>")
    with pytest.raises(InvalidInput) as bad:
        producer.send(rows, bare)
    assert {e.field for e in bad.value.errors} == {"subject", "src"}
    assert redis_client.dbsize() == 0
    good = CampaignOptions(name="mail", kind=Kind.EMAIL, text="<p>Hola {name}</p>",
                           subject="Para {name}", src=" contacto@Empresa.CL ",
                           skip_invalid=True)  # fmt: skip
    accepted = producer.send(rows, good)
    assert accepted.plan.transport is Transport.V3
    assert [(i.line, i.field) for i in accepted.plan.report.invalid] == [(2, "dst_email")]
    campaign = producer.get(accepted.campaign_id)
    assert campaign is not None and campaign.src == "contacto@empresa.cl"
    assert campaign.subject == "Para {name}"
    # CONNECTUS_DEFAULT_SRC_EMAIL stands in for a missing src.
    with_default = load_settings({"KEY_PREFIX": PREFIX,
                                  "CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"})  # fmt: skip
    no_src = CampaignOptions(name="mail", kind=Kind.EMAIL, text="x", subject="s")
    plan = CampaignProducer(with_default, redis_client=redis_client).preflight(rows[:1], no_src)
    assert plan.refusals == []


def test_bad_options_are_all_named_together(producer: CampaignProducer) -> None:
    options = CampaignOptions(name=" ", text="Hola {name", kind=Kind.WHATSAPP, window="9-21",
                              transport=Transport.V1_BULK, max_lateness_s=-1,
                              deliver_at="mañana")  # fmt: skip
    with pytest.raises(InvalidInput) as bad:
        producer.preflight(_rows(1), options)
    fields = [e.field for e in bad.value.errors]
    assert set(fields) >= {"name", "transport", "src", "deliver_at", "window", "max_lateness_s"}
    assert any(f in ("text", "template") for f in fields), fields


def test_the_stored_rows_are_compact_json(
    producer: CampaignProducer, redis_client: fakeredis.FakeRedis
) -> None:
    accepted = producer.send([{"dst_number": "56987654321", "name": "Ñandú"}], OPTIONS)
    raw = redis_client.get(f"{PREFIX}:campaign:{accepted.campaign_id}:chunk:0")
    assert raw == '[["56987654321","Ñandú"]]'.encode()
    assert json.loads(raw) == [["56987654321", "Ñandú"]]


def test_v1_refusals_and_checker_findings_stay_in_line_order(
    producer: CampaignProducer, tmp_path: Path
) -> None:
    # One batch holds both kinds: a v1 refusal is found after the checker's pass
    # over the batch, yet the report lists every invalid row by line, as row by row.
    path = tmp_path / "mixed.csv"
    path.write_text(
        "dst_number,name\n"
        "+54 9 11 2345-6789,ar\n"  # 2: valid, not Chilean: v1 refuses
        "12,bad\n"  # 3: not a number
        "56987654321,cl\n"  # 4: valid
        "+52 55 1234 5678,mx\n"  # 5: v1 refuses
        "56987654322,\n"  # 6: name empty
    )
    plan = producer.preflight(path, OPTIONS)
    assert [i.line for i in plan.report.invalid] == [2, 3, 5, 6]
    assert plan.report.valid == 1 and plan.segments_by_country == {1: 1}


def test_a_subclients_sms_campaign_refuses_numbers_of_no_connectus_country(
    settings: Settings, redis_client: fakeredis.FakeRedis
) -> None:
    producer = CampaignProducer(settings, redis_client=redis_client, balance=FakeBalance(1_000).of)
    rows = [{"dst_number": "+56 9 8765 4321", "name": "cl"},
            {"dst_number": "+34 612 34 56 78", "name": "es"},
            {"dst_number": "+51 987 654 321", "name": "pe"}]  # fmt: skip
    options = CampaignOptions(name="sub", text="Hola {name}", transport=Transport.V3,
                              id_client="da82la12")  # fmt: skip
    plan = producer.preflight(rows, options)
    assert plan.report.valid == 2 and plan.segments_by_country == {1: 1, 3: 1}
    assert [(i.line, i.field) for i in plan.report.invalid] == [(2, "dst_number")]
    assert "none of Connectus's countries" in plan.report.invalid[0].reason
    # Without a subclient, the account's balance decides (the number is valid).
    no_sub = CampaignOptions(name="acct", text="Hola {name}", transport=Transport.V3)
    assert producer.preflight(rows, no_sub).report.valid == 3
