from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from uuid import UUID

import pytest

from core.hashing import content_hash, fingerprint


class Kind(Enum):
    SMS = "sms"


def test_content_hash_is_sha256_hex_of_utf8() -> None:
    assert content_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert (
        content_hash("Tu código es 123456")
        == hashlib.sha256("Tu código es 123456".encode()).hexdigest()
    )
    assert content_hash("a") != content_hash("b")


def test_fingerprint_ignores_key_order_at_every_level() -> None:
    one = {"dst_number": "56987654321", "meta": {"a": 1, "b": [1, 2]}}
    two = {"meta": {"b": [1, 2], "a": 1}, "dst_number": "56987654321"}
    assert fingerprint(one) == fingerprint(two)
    assert len(fingerprint(one)) == 64


def test_fingerprint_sees_every_difference() -> None:
    base = {"dst_number": "56987654321", "sms_content": "hola", "tags": [1, 2]}
    assert fingerprint(base) != fingerprint({**base, "sms_content": "hola "})
    assert fingerprint(base) != fingerprint({**base, "tags": [2, 1]})  # list order matters
    assert fingerprint(base) != fingerprint({**base, "extra": None})
    assert fingerprint({"n": 1}) != fingerprint({"n": "1"})


def test_fingerprint_is_canonical_json() -> None:
    # Pinned: the value is stored in Redis, so it must not change between releases.
    expected = hashlib.sha256('{"a":"ñ","b":[1,2]}'.encode()).hexdigest()
    assert fingerprint({"b": [1, 2], "a": "ñ"}) == expected


def test_fingerprint_same_instant_in_any_zone() -> None:
    utc = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    santiago = utc.astimezone(timezone(timedelta(hours=-3)))
    assert fingerprint({"at": utc}) == fingerprint({"at": santiago})


def test_fingerprint_extra_types() -> None:
    uid = UUID("12345678-1234-5678-1234-567812345678")
    assert fingerprint({"id": uid, "kind": Kind.SMS, "s": {"b", "a", 3}}) == fingerprint(
        {"id": str(uid), "kind": "sms", "s": ["a", "b", 3]}  # ordered by their JSON text
    )


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"at": datetime(2024, 3, 10, 12, 0)}, TypeError),
        ({"x": object()}, TypeError),
        ({"x": math.nan}, ValueError),
        ({"x": math.inf}, ValueError),
    ],
)
def test_fingerprint_rejects_ambiguous_values(payload: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        fingerprint(payload)
