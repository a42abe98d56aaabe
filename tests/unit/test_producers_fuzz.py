"""Hypothesis fuzzes the Python producers: any argument of any type is either
accepted (a job or campaign id) or refused with the documented exceptions,
which name the field; never another exception (TypeError, OverflowError,
a Redis error...), never a hang (pytest's timeout bounds each test).

fakeredis with Lua, so the whole enqueue path runs (the idempotency script
with its fingerprint included). ``make fuzz`` runs these with
``CW_FUZZ_SCALE`` times the examples and random seeds (the figures go to
docs/security.md); ``make test`` runs a short, derandomized pass.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fakeredis
import hypothesis
import pytest
from hypothesis import strategies as st

from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.campaign.store import CampaignConflict
from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.jobs import IdempotencyConflict
from connectus_worker.producers.api import Producer
from connectus_worker.producers.campaigns import CampaignProducer, CampaignRefused

SCALE = float(os.environ.get("CW_FUZZ_SCALE", "1"))
#: Figures of this run: inputs tried, accepted, refused (``make fuzz`` reports them).
FIGURES: Counter[str] = Counter()
#: The refusals a caller is promised; each names its field(s).
REFUSALS = (InvalidInput, IdempotencyConflict, CampaignRefused, CampaignConflict)

FUZZ = hypothesis.settings(
    max_examples=max(1, int(60 * SCALE)),
    derandomize=SCALE == 1,  # make test: the same examples every run
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)

#: Texts that reach every check: surrogates, NUL, CR/LF, very long, digits.
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None), max_size=20),  # lone surrogates too
    st.sampled_from(["", " ", "\x00", "a\r\nb", "56987654321", "+56 9 8765 4321",
                     "ana@example.com", "x" * 2000, "2026-12-01 09:00", "9999-12-31 23:59:59",
                     "1e999", "inf", "nan", "{name}", "{", "bulk", "otp"]),
)  # fmt: skip
datetimes = st.one_of(
    st.datetimes(),  # naive
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=14))])),
    st.just(datetime.max),
    st.just(datetime.min.replace(tzinfo=UTC)),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), texts, st.binary(max_size=10), datetimes,
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
OPTION_NAMES = ["src_number", "src_email", "id_client", "id_delivery", "priority", "deliver_at",
                "max_age_s", "expires_at", "unknown_option"]  # fmt: skip
options = st.dictionaries(st.sampled_from(OPTION_NAMES), values, max_size=4)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Write this module's figures to ``$CW_FUZZ_REPORT/producers.json`` (``make fuzz``)."""
    yield
    target = os.environ.get("CW_FUZZ_REPORT")
    if target:
        figures = {"scale": SCALE, "derandomized": SCALE == 1, **FIGURES}
        path = Path(target) / "producers.json"
        path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def producer() -> Producer:
    return Producer(load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"}),
                    redis_client=fakeredis.FakeRedis())  # fmt: skip


def _sends(producer: Producer) -> dict[str, tuple[Callable[..., str], int]]:
    """Each send function and how many positional arguments it takes."""
    return {
        "sms": (producer.send_sms, 2),
        "otp": (producer.send_otp, 2),
        "email": (producer.send_email, 3),
        "otp_email": (producer.send_otp_email, 3),
        "whatsapp": (producer.send_whatsapp, 2),
        "whatsapp_qr": (producer.send_whatsapp_qr, 2),
        "whatsapp_qr_group": (producer.send_whatsapp_qr_group, 2),
    }


def _refused_or_accepted(call: Callable[[], Any]) -> Any:
    FIGURES["inputs"] += 1
    try:
        result = call()
    except REFUSALS as exc:
        FIGURES["refused"] += 1
        errors = getattr(exc, "errors", None)
        if isinstance(exc, InvalidInput):
            # A refusal names the field(s) and why.
            assert errors and all(e.field and e.reason for e in errors), exc
        return exc
    FIGURES["accepted"] += 1
    return result


@pytest.mark.parametrize("kind", [k.value for k in Kind])
def test_any_arguments_are_a_job_or_a_named_refusal(producer: Producer, kind: str) -> None:
    send, arity = _sends(producer)[kind]

    @FUZZ
    @hypothesis.given(
        args=st.lists(values, min_size=arity, max_size=arity),
        key=st.one_of(st.none(), values),
        correlation=st.one_of(st.none(), values),
        extra=options,
    )
    def check(args: list[Any], key: Any, correlation: Any, extra: dict[str, Any]) -> None:
        result = _refused_or_accepted(
            lambda: send(*args, idempotency_key=key, correlation_id=correlation, **extra)
        )
        if isinstance(result, str):
            assert producer.get_status(result).kind.value == kind

    check()


@pytest.mark.parametrize("kind", ["sms", "otp"])
def test_plausible_sends_with_odd_options_never_crash(producer: Producer, kind: str) -> None:
    # Real numbers and texts, so that the cases get past the first checks and
    # reach the options, the opt-out check, the fingerprint and the enqueue.
    send, _ = _sends(producer)[kind]

    @FUZZ
    @hypothesis.given(
        text=st.text(min_size=1, max_size=30).filter(str.strip),
        key=st.one_of(st.none(), st.sampled_from(["k1", "k2", "campaign:k", "k:lock"])),
        extra=options,
    )
    def check(text: str, key: str | None, extra: dict[str, Any]) -> None:
        result = _refused_or_accepted(lambda: send("56987654321", text, idempotency_key=key,
                                                   **extra))  # fmt: skip
        if isinstance(result, str):
            assert producer.get_status(result).kind.value == kind
        outcomes[type(result).__name__] += 1

    outcomes: Counter[str] = Counter()
    check()
    assert outcomes["str"] and outcomes["InvalidInput"], outcomes


rows = st.lists(
    st.one_of(
        st.dictionaries(st.sampled_from(["dst_number", "dst_email", "name", "x", ""]), values,
                        max_size=3),
        st.fixed_dictionaries({"dst_number": st.sampled_from(["56987654321", "56987654322"]),
                               "name": texts}),
    ),
    max_size=5,
)  # fmt: skip


def test_any_campaign_is_accepted_or_refused_naming_the_reason() -> None:
    producer = CampaignProducer(load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"}),
                                redis_client=fakeredis.FakeRedis(), balance=None)  # fmt: skip

    @FUZZ
    @hypothesis.given(
        recipients=rows,
        name=values,
        text=st.one_of(texts, values),
        kind=st.sampled_from(list(Kind)),
        extra=st.fixed_dictionaries(
            {},
            optional={
                "subject": values,
                "src": values,
                "id_client": values,
                "deliver_at": values,
                "window": st.one_of(values, st.sampled_from(["09:00-21:00", "25:00-26:00"])),
                "max_lateness_s": values,
                "idempotency_key": st.one_of(values, st.just("c1")),
                "skip_invalid": st.booleans(),
            },
        ),
    )
    def check(
        recipients: list[dict[str, Any]], name: Any, text: Any, kind: Kind, extra: dict[str, Any]
    ) -> None:
        options = CampaignOptions(name=name, text=text, kind=kind, **extra)
        result = _refused_or_accepted(lambda: producer.send(recipients, options))
        assert isinstance(result, REFUSALS) or result.campaign_id

    check()


#: Recipients that pass: distinct real numbers, names of any text.
good_rows = st.lists(st.text(max_size=20), min_size=1, max_size=5).map(
    lambda names: [{"dst_number": f"5698765432{i}", "name": n} for i, n in enumerate(names)]
)


def test_well_typed_campaigns_with_odd_values_never_crash() -> None:
    # Each option of its type, so that the cases reach the checks of values,
    # the template, the rows, the store and the idempotency fingerprint.
    producer = CampaignProducer(load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "c@empresa.cl"}),
                                redis_client=fakeredis.FakeRedis(), balance=None)  # fmt: skip
    optional_texts = st.one_of(st.none(), texts)

    @FUZZ
    @hypothesis.given(
        recipients=st.one_of(good_rows, rows),
        name=st.one_of(st.just("Promo"), texts),
        text=st.one_of(st.sampled_from(["Hola {name}", "Hola", "{x}", "{{", "{name!r}", "{0}"]),
                       texts),
        kind=st.sampled_from([Kind.SMS, Kind.SMS, Kind.EMAIL, Kind.WHATSAPP]),
        extra=st.fixed_dictionaries(
            {},
            optional={
                "subject": optional_texts, "src": optional_texts, "id_client": optional_texts,
                "deliver_at": st.one_of(optional_texts, datetimes),
                "window": st.one_of(optional_texts, st.sampled_from(["09:00-21:00", "23:00-01:00",
                                                                     "25:00-26:00"])),
                "max_lateness_s": st.one_of(st.none(), st.integers()),
                "idempotency_key": st.one_of(optional_texts, st.just("c1")),
                "skip_invalid": st.booleans(), "force": st.booleans(),
            },
        ),
    )  # fmt: skip
    def check(
        recipients: list[dict[str, Any]], name: str, text: str, kind: Kind, extra: dict[str, Any]
    ) -> None:
        options = CampaignOptions(name=name, text=text, kind=kind, **extra)
        result = _refused_or_accepted(lambda: producer.send(recipients, options))
        assert isinstance(result, REFUSALS) or result.campaign_id
        outcomes[type(result).__name__] += 1

    outcomes: Counter[str] = Counter()
    check()
    # The cases must get past the checks too, or the store is never fuzzed.
    assert outcomes["Accepted"] and outcomes["InvalidInput"], outcomes


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("window", ["09:00-21:00"], "must be a string"),
        ("max_lateness_s", datetime(2030, 1, 1), "must be an integer"),
        ("max_lateness_s", True, "must be an integer"),
        ("src", b"56999944837", "must be a string or an integer"),
    ],
)
def test_a_campaign_option_of_the_wrong_type_is_refused_naming_it(
    option: str, value: Any, reason: str
) -> None:
    # Found by the fuzzing above: these crashed inside (AttributeError, TypeError).
    producer = CampaignProducer(load_settings({}), redis_client=fakeredis.FakeRedis(), balance=None)
    options = CampaignOptions(name="Promo", text="Hola", **{option: value})
    with pytest.raises(InvalidInput) as info:
        producer.send([{"dst_number": "56987654321"}], options)
    assert [(e.field, e.reason) for e in info.value.errors] == [(option, reason)]
