"""Content hashes and payload fingerprints.

:func:`content_hash` is what an OTP record stores instead of its content
(and what Connectus stores for ``save_content=hash``). :func:`fingerprint`
compares two requests that carry the same idempotency key: same fingerprint,
same request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Set
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any
from uuid import UUID


def content_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 encoding of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    """JSON-able form for the few non-JSON types a payload may carry."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            # A naive time means different instants on different hosts.
            raise TypeError("fingerprint: naive datetime has no single meaning")
        # The same instant in any zone gives the same fingerprint.
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value  # json.dumps calls _canonical again if still needed
    if isinstance(value, Set):
        # Ordered by each element's own canonical JSON: works for mixed types.
        return sorted(value, key=_canonical_json)
    raise TypeError(f"fingerprint: {type(value).__name__} is not JSON-serialisable")


def _canonical_json(value: Any) -> str:
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_canonical,
    )


def fingerprint(payload: Mapping[str, Any]) -> str:
    """Stable SHA-256 hex of ``payload`` as canonical JSON.

    Keys sorted, no insignificant whitespace, UTF-8 (not ``\\u`` escapes),
    NaN and infinities rejected; dict order and aware-datetime zones do not
    change the result. Raises TypeError for values JSON cannot carry.
    """
    return hashlib.sha256(_canonical_json(payload).encode("utf-8")).hexdigest()
