"""producers.optout: the check the Producer calls before enqueueing a marketing send."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.domain.requests import parse_request
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.optout import (
    OPTED_OUT_REASON,
    change,
    is_opted_out,
    refuse_if_opted_out,
)

KEYS = Keys("cw")
NUMBER = "56987654321"


@pytest.fixture
def redis() -> fakeredis.FakeRedis:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    assert change(client, KEYS, NUMBER, "out", source="api", now_ms=1, hash_key=b"k")
    assert not change(
        client, KEYS, "+" + NUMBER, "out", source="api", now_ms=2, hash_key=b"k"
    )  # same number
    return client


def test_membership_is_by_normalised_number(redis: fakeredis.FakeRedis) -> None:
    assert redis.smembers(KEYS.opt_out) == {NUMBER.encode()}
    assert is_opted_out(redis, KEYS, NUMBER) and is_opted_out(redis, KEYS, "+" + NUMBER)
    assert not is_opted_out(redis, KEYS, "56987654322")
    assert not is_opted_out(redis, Keys("other"), NUMBER)  # per deployment prefix


def _request(kind: Kind, priority: Any, **fields: Any) -> Any:
    settings = load_settings({"CONNECTUS_DEFAULT_SRC_EMAIL": "a@empresa.cl"})
    return parse_request({"type": kind.value, **fields, "priority": priority}, settings)


REFUSED = [
    (Kind.SMS, {"dst_number": "+56 9 8765 4321", "sms_content": "promo"}, "dst_number"),
    (Kind.WHATSAPP, {"dst_number": NUMBER, "whatsapp_content": "promo", "src_number": "56999944837"},
     "dst_number"),
    (Kind.WHATSAPP_QR, {"number": "9 8765 4321", "message": "promo"}, "number"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "fields", "field"), REFUSED)
def test_bulk_sends_to_an_opted_out_number_are_refused_naming_the_field(
    redis: fakeredis.FakeRedis, kind: Kind, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        refuse_if_opted_out(redis, KEYS, _request(kind, "bulk", **fields))
    assert info.value.field == field and info.value.reason == OPTED_OUT_REASON


@pytest.mark.parametrize(("kind", "fields", "field"), REFUSED)
def test_transactional_sends_are_never_refused(
    redis: fakeredis.FakeRedis, kind: Kind, fields: dict[str, Any], field: str
) -> None:
    refuse_if_opted_out(redis, KEYS, _request(kind, "transactional", **fields))


def test_otp_and_email_are_never_refused(redis: fakeredis.FakeRedis) -> None:
    # An OTP is never marketing: it cannot even be asked for as bulk.
    with pytest.raises(InvalidInput, match="priority: must be 'transactional'"):
        _request(Kind.OTP, "bulk", dst_number=NUMBER, sms_content="code 1")
    otp = _request(Kind.OTP, "transactional", dst_number=NUMBER, sms_content="code 1")
    email = _request(Kind.EMAIL, "bulk", dst_email="a@example.com", subject="s", email_content="x")
    refuse_if_opted_out(redis, KEYS, otp)
    refuse_if_opted_out(redis, KEYS, email)
