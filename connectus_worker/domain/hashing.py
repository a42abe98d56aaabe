"""Content digests and payload fingerprints.

Every digest this project *keeps* (an OTP record's ``content_hmac``, the provider-id
lookup's entries, the idempotency fingerprints) is an HMAC-SHA256 under
``CONTENT_HASH_KEY``: a plain SHA-256 of a 6-digit code is reversed in under a second
by trying the million codes, a keyed one is not without the key. :func:`content_hash`
(plain) is only what Connectus lists for an OTP sent with ``save_content=hash``,
computed to match, never stored; :func:`content_digest` keys that same form, so a
stored digest is compared with a listing without the code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

#: Domain labels: a digest made for one use never equals one made for another.
_CONTENT_LABEL = b"cw-content\0"
_FINGERPRINT_LABEL = b"cw-fingerprint\0"
_RECIPIENT_LABEL = b"cw-recipient\0"


def content_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 encoding of ``text`` (Connectus's ``save_content=hash``).

    Unkeyed: compute it to compare with a Connectus listing, never store it.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def provider_hash_digest(key: bytes, sha256_hex: str) -> str:
    """Keyed digest (HMAC-SHA256 hex under ``key``) of a content's plain SHA-256 hex."""
    return hmac.new(key, _CONTENT_LABEL + sha256_hex.encode("ascii"), hashlib.sha256).hexdigest()


def content_digest(key: bytes, text: str) -> str:
    """Keyed digest of ``text``: what a record or lookup entry keeps instead of content.

    ``provider_hash_digest(key, content_hash(text))``, so a Connectus listing that
    shows only the plain hash is matched by keying the listed hash.
    """
    return provider_hash_digest(key, content_hash(text))


def fingerprint(payload: Mapping[str, Any], *, key: bytes) -> str:
    """Stable HMAC-SHA256 hex under ``key`` of ``payload`` as canonical JSON.

    Keys sorted, no insignificant whitespace, UTF-8 (not ``\\u`` escapes),
    NaN and infinities rejected (ValueError), as are values JSON cannot carry
    (TypeError): dict order does not change the result.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)  # fmt: skip
    message = _FINGERPRINT_LABEL + text.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def campaign_digest(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 under ``key`` fed piece by piece (a campaign's definition and rows)."""
    return hmac.new(key, b"cw-campaign\0", hashlib.sha256)


def recipient_digest(key: bytes, recipient: str) -> str:
    """Keyed digest (HMAC-SHA256 hex under ``key``) of a normalised recipient: E.164
    digits without '+' for a number, an address (lower-cased here) for an e-mail.

    The search index (:mod:`ledger.lookup`) keeps this instead of the recipient: no
    list of plain numbers, and a digest is matched only by the full value."""
    text = recipient.lower() if "@" in recipient else recipient
    return hmac.new(key, _RECIPIENT_LABEL + text.encode("utf-8"), hashlib.sha256).hexdigest()
