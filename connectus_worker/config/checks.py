"""What a setting must satisfy beyond its type, one check per rule.

A check raises ``ValueError`` with the reason only (never the value: it may be a
secret); :func:`config.settings.load_settings` names the variable. Cross-field checks
read fields declared before theirs from ``info.data`` (declaration order).
"""

from __future__ import annotations

import re
import zoneinfo
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationInfo

from connectus_worker.config.tenants import parse_tenants


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"{variable}: {reason}")


# Bearer tokens: RFC 6750 token characters (no comma: the list separator).
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
# URL-safe without encoding (RFC 3986 unreserved characters).
_URL_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")


def check_redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("must start with redis://, rediss:// or unix://")
    if parts.scheme == "unix":
        return value
    if not parts.hostname:
        raise ValueError("has no host")
    # urlsplit checks the port only when asked (redis-py would raise later, as a
    # traceback from the first connection).
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("has a port that is not a number from 1 to 65535")
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        raise ValueError("has a database that is not a number (e.g. redis://host:6379/0)")
    return value


def sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """``REDIS_SENTINELS`` as (host, port) pairs: ``host:port`` items, comma-separated
    (``[::1]:26379`` for IPv6), or empty."""
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = item.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{item!r} is not host:port (port 1-65535), e.g. sentinel-1:26379")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def check_sentinels(value: str) -> str:
    sentinel_addresses(value)
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


def check_region(value: str) -> str:
    # Imported here: the settings module stays cheap for commands that never validate.
    import phonenumbers

    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region known to phonenumbers (e.g. CL, MX, PE)")
    return value


def check_rate_floor(value: float, info: ValidationInfo) -> float:
    # The floor must not exceed a configured rate, or AIMD would raise it.
    for product in ("sms", "otp", "email", "whatsapp"):
        rate = info.data.get(f"rate_{product}_per_s")
        if rate is not None and value > rate:
            raise ValueError(f"must not exceed RATE_{product.upper()}_PER_S ({rate})")
    return value


#: A maximum and the minimum it must not be below.
LOWER_BOUND = {
    "breaker_max_open_s": "breaker_open_s",
    "retry_max_backoff_ms": "retry_initial_backoff_ms",
    "durable_max_backoff_ms": "durable_min_backoff_ms",
}


def check_not_below(value: float, info: ValidationInfo) -> float:
    first = LOWER_BOUND[str(info.field_name)]
    low = info.data.get(first)
    if low is not None and value < low:
        raise ValueError(f"must be at least {first.upper()} ({low})")
    return value


def check_user(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("is empty")
    return value


_SHAPE_RULE = "must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = -"


def check_intake_tokens(value: SecretStr | None) -> SecretStr | None:
    tokens = value.get_secret_value().split(",") if value is not None else []
    for position, token in enumerate(tokens, start=1):
        if not _TOKEN_SHAPE.match(token.strip()):  # the position, never the token
            raise ValueError(f"token #{position} {_SHAPE_RULE}")
    return value


def check_intake_tenants(value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
    """``name:token,token;name:token``: valid names, each token shaped like an
    ``INTAKE_TOKENS`` one, and no token in two tenants (nor in ``INTAKE_TOKENS``:
    a token names exactly one tenant)."""
    if value is None:
        return None
    tenants = parse_tenants(value.get_secret_value())
    seen: dict[str, str] = {}
    plain = info.data.get("intake_tokens")
    if isinstance(plain, SecretStr):
        for token in plain.get_secret_value().split(","):
            seen[token.strip()] = "INTAKE_TOKENS"
    for name, tokens in tenants.items():
        for position, token in enumerate(tokens, start=1):
            if not _TOKEN_SHAPE.match(token):  # the tenant and position, never the token
                raise ValueError(f"tenant {name!r} token #{position} {_SHAPE_RULE}")
            if token in seen:
                raise ValueError(
                    f"tenant {name!r} token #{position} is also a token of {seen[token]}: "
                    "a token belongs to one tenant"
                )
            seen[token] = f"tenant {name!r}"
    return value


def check_webhook_secret(value: SecretStr | None) -> SecretStr | None:
    # It goes into a URL pasted into the Connectus platform: unreserved characters only.
    if value is not None and not _URL_SECRET_SHAPE.match(value.get_secret_value()):
        raise ValueError("must be 16-256 characters of A-Z a-z 0-9 . _ ~ -")
    return value


def check_content_hash_key(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not 32 <= len(value.get_secret_value()) <= 1024:
        raise ValueError("must be 32-1024 characters (e.g. `openssl rand -hex 32`)")
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


def check_opt_in_keywords(value: str, info: ValidationInfo) -> str:
    """Like the opt-out words, and none of them an opt-out word too (which would win?)."""
    check_opt_out_keywords(value)
    both = keyword_set(value) & keyword_set(info.data.get("opt_out_keywords") or "")
    if both:
        raise ValueError(f"{', '.join(sorted(both))} is also in OPT_OUT_KEYWORDS")
    return value


def keyword_set(value: str) -> frozenset[str]:
    """Comma-separated keywords, case-folded (compare with ``text.strip().casefold()``)."""
    return frozenset(word.strip().casefold() for word in value.split(","))


# --- sample secrets -----------------------------------------------------------

#: The content-digest key used in sandbox/demo when none is set (published here).
DEV_CONTENT_HASH_KEY = "connectus-worker-dev-content-hash-key-not-secret"
#: Secrets published in this repository (compose files, the sandbox, docs): they
#: authenticate nobody. Compared case-insensitively, per comma-separated item.
SAMPLE_SECRETS = frozenset(
    {"sandbox-key", "sandbox-intake-token", "sandbox-webhook-secret", DEV_CONTENT_HASH_KEY}
)
#: Any setting containing this is a placeholder of deploy/k8s/secret.yaml.
PLACEHOLDER_MARK = "replace-me"
#: RUN_MODE values in which the samples are allowed (a local stack, the demo).
SAMPLE_MODES = frozenset({"sandbox", "demo"})
# Items of a secret setting: "," and, in INTAKE_TENANTS, ";" and ":" (no token,
# secret or placeholder holds one).
_SECRET_ITEM_SEPARATORS = re.compile(r"[,;:]")


def find_sample_secret(settings: BaseModel, mode: str) -> tuple[str, str] | None:
    """(field, reason) of the first published sample secret or placeholder, or None.
    Every field is looked at: a secret setting added later is covered too."""
    if mode in SAMPLE_MODES:
        return None
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        secret = isinstance(value, SecretStr)
        text = value.get_secret_value() if secret else value
        if not isinstance(text, str):
            continue
        lowered = text.lower()
        if PLACEHOLDER_MARK in lowered:
            return name, (
                "still holds a REPLACE-ME placeholder (deploy/k8s/secret.yaml): set the real value"
            )
        items = _SECRET_ITEM_SEPARATORS.split(lowered) if secret else []
        if any(item.strip() in SAMPLE_SECRETS for item in items):
            return name, (
                f"is a published sample secret, refused when RUN_MODE={mode}: set a "
                "real one, or RUN_MODE=sandbox for a local sandbox stack"
            )
    return None


def check_console_users(value: SecretStr | None) -> SecretStr | None:
    """``name:role:hash;...`` (:func:`config.console_users.parse_users`)."""
    if value is not None:
        from connectus_worker.config.console_users import parse_users

        parse_users(value.get_secret_value())
    return value


def check_console_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < 32:
        raise ValueError("must be at least 32 characters (it signs the console's cookies)")
    return value
