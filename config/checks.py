"""What a setting must satisfy beyond its type, one check per rule.

Moved out of :mod:`config.settings` (one concept per module), which attaches
each check to its fields with ``field_validator`` in the order they ran as
methods. A check raises ``ValueError`` with the reason only;
:func:`config.settings.load_settings` names the environment variable. Cross-field
checks read fields declared before theirs from ``info.data`` (fields validate
in declaration order).
"""

from __future__ import annotations

import re
import zoneinfo
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationInfo

# Bearer tokens: RFC 6750 token characters (no comma: the list separator).
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
# URL-safe without encoding (RFC 3986 unreserved characters).
_URL_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")


def check_redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("must start with redis://, rediss:// or unix://")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("has no host")
    return value


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.rstrip("/")


def check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def check_rate_floor(value: float, info: ValidationInfo) -> float:
    # The floor must not exceed a configured rate, or AIMD would raise it.
    for product in ("sms", "otp", "email", "whatsapp"):
        rate = info.data.get(f"rate_{product}_per_s")
        if rate is not None and value > rate:
            raise ValueError(f"must not exceed RATE_{product.upper()}_PER_S ({rate})")
    return value


def check_max_open(value: float, info: ValidationInfo) -> float:
    first = info.data.get("breaker_open_s")
    if first is not None and value < first:
        raise ValueError(f"must be at least BREAKER_OPEN_S ({first})")
    return value


def check_backoff_order(value: int, info: ValidationInfo) -> int:
    # Fields validate in declaration order, so the minimum is already known.
    first = "retry_initial_backoff_ms" if info.field_name == "retry_max_backoff_ms" else (
        "durable_min_backoff_ms")  # fmt: skip
    low = info.data.get(first)
    if low is not None and value < low:
        raise ValueError(f"must be at least {first.upper()} ({low})")
    return value


def check_user(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("is empty")
    return value


def check_intake_tokens(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    tokens = value.get_secret_value().split(",")
    for position, token in enumerate(tokens, start=1):
        # The reason names the position, never the token.
        if not _TOKEN_SHAPE.match(token.strip()):
            raise ValueError(
                f"token #{position} must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = -"
            )
    return value


def check_webhook_secret(value: SecretStr | None) -> SecretStr | None:
    # It goes into a URL pasted into the Connectus platform: unreserved characters only.
    if value is not None and not _URL_SECRET_SHAPE.match(value.get_secret_value()):
        raise ValueError("must be 16-256 characters of A-Z a-z 0-9 . _ ~ -")
    return value


def check_basic_password(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not 12 <= len(value.get_secret_value()) <= 256:
        raise ValueError("must be 12-256 characters")
    return value


def check_opt_out_keywords(value: str) -> str:
    words = [word.strip() for word in value.split(",")]
    if not all(words) or any(len(word) > 32 for word in words):
        raise ValueError("must be comma-separated non-empty words of at most 32 characters")
    return value
