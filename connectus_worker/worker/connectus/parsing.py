"""Tolerant readers for Connectus answer bodies.

The documents leave most answers unspecified, so every reader ignores unknown
fields, accepts numbers sent as strings (``{"balance": "1432"}``) and ids sent
as numbers, and raises :class:`ParseError` only when a field the caller cannot
do without is missing. The client's boundary turns ``ParseError`` into
:class:`~worker.connectus.errors.MalformedResponse`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The contract: a provider id is the first of these that is present.
PROVIDER_ID_KEYS = ("id", "id_sms", "message_id", "id_email", "id_message")

_INT_TEXT = re.compile(r"^[+-]?\d+$")


class ParseError(ValueError):
    """An answer lacks a field the caller needs, or has it in an unusable type."""


def as_mapping(body: Any, what: str = "answer") -> Mapping[str, Any]:
    """``body`` as a JSON object, or ParseError."""
    if not isinstance(body, Mapping):
        raise ParseError(f"{what} is not a JSON object")
    return body


def opt_str(data: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` holding a non-empty string (or an int, as text)."""
    for key in keys:
        value = data.get(key)
        if isinstance(value, bool):  # bool is an int: never an id or a text
            continue
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str) and value:
            return value
    return None


def req_str(data: Mapping[str, Any], *keys: str) -> str:
    value = opt_str(data, *keys)
    if value is None:
        raise ParseError(f"answer has no {' or '.join(keys)}")
    return value


def opt_int(data: Mapping[str, Any], *keys: str) -> int | None:
    """The first of ``keys`` holding an integer, or a string/float that is one."""
    for key in keys:
        value = data.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_TEXT.match(value.strip()):
            return int(value.strip())
    return None


def req_int(data: Mapping[str, Any], *keys: str) -> int:
    value = opt_int(data, *keys)
    if value is None:
        raise ParseError(f"answer has no integer {' or '.join(keys)}")
    return value


def opt_bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def provider_id(data: Mapping[str, Any]) -> str | None:
    """The provider's id for a message: the first of :data:`PROVIDER_ID_KEYS`."""
    return opt_str(data, *PROVIDER_ID_KEYS)


def objects(data: Mapping[str, Any], *keys: str) -> list[Mapping[str, Any]]:
    """The JSON objects in the first list found under ``keys`` ([] when absent).

    Non-object entries are skipped; a non-list value is a ParseError because
    silently reading it as empty would hide lost messages.
    """
    for key in keys:
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if not isinstance(value, list):
            raise ParseError(f"{key} is not a list")
        return [item for item in value if isinstance(item, Mapping)]
    return []
