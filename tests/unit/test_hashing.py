from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime

import pytest

from connectus_worker.domain.hashing import (
    content_digest,
    content_hash,
    fingerprint,
    provider_hash_digest,
)

KEY = b"k" * 32


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
    assert fingerprint(one, key=KEY) == fingerprint(two, key=KEY)
    assert len(fingerprint(one, key=KEY)) == 64


def test_fingerprint_sees_every_difference() -> None:
    base = {"dst_number": "56987654321", "sms_content": "hola", "tags": [1, 2]}
    assert fingerprint(base, key=KEY) != fingerprint({**base, "sms_content": "hola "}, key=KEY)
    # list order matters
    assert fingerprint(base, key=KEY) != fingerprint({**base, "tags": [2, 1]}, key=KEY)
    assert fingerprint(base, key=KEY) != fingerprint({**base, "extra": None}, key=KEY)
    assert fingerprint({"n": 1}, key=KEY) != fingerprint({"n": "1"}, key=KEY)


def test_fingerprint_is_canonical_json() -> None:
    # Pinned: the value is stored in Redis, so it must not change between releases.
    message = b"cw-fingerprint\0" + '{"a":"ñ","b":[1,2]}'.encode()
    expected = hmac.new(KEY, message, hashlib.sha256).hexdigest()
    assert fingerprint({"b": [1, 2], "a": "ñ"}, key=KEY) == expected


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
        fingerprint(payload, key=KEY)


def test_fingerprints_and_digests_depend_on_the_key() -> None:
    payload = {"kind": "otp", "payload": {"sms_content": "Tu codigo es 123456"}}
    assert fingerprint(payload, key=KEY) != fingerprint(payload, key=b"o" * 32)
    assert content_digest(KEY, "123456") != content_digest(b"o" * 32, "123456")
    # Nothing kept is the plain hash a 6-digit code is recovered from.
    assert content_digest(KEY, "123456") != content_hash("123456")
    assert (
        fingerprint(payload, key=KEY)
        != hashlib.sha256(
            b'{"kind":"otp","payload":{"sms_content":"Tu codigo es 123456"}}'
        ).hexdigest()
    )


def test_a_content_digest_is_the_keyed_form_of_the_hash_connectus_lists() -> None:
    # Connectus lists an OTP sent with save_content=hash as the plain SHA-256:
    # keying that listed hash gives the digest we kept, without the code.
    assert content_digest(KEY, "Tu codigo es 123456") == provider_hash_digest(
        KEY, content_hash("Tu codigo es 123456")
    )
