"""Redaction: what structlog's last processor (:func:`redact_event`) does to every event:

- phone numbers: masked in known fields and in any text (``569*****321``),
  except epoch times (10 or 13 digits) under a time key such as ``due_ms``;
- e-mail addresses: masked in known fields and in any text (``j***@empresa.cl``);
- message content: replaced by its length and a keyed digest (see
  :func:`summarize_content`); OTP codes are replaced by ``***``;
- secrets (keys naming a password, token, API key, secret, authorization)
  become ``***``; ``Basic``/``Bearer`` credentials and ``user:pass@`` in URLs
  are cut out of text.

The masks also serve where a destination is kept outside a log (job records,
dead-letter listings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

_MAX_DEPTH = 12  # deeper structures are summarised: guards against cycles

PHONE_KEYS = frozenset(
    {"dst_number", "src_number", "number", "numbers", "dst_numbers", "to", "from", "phone",
     "phone_number", "msisdn", "mobile", "recipient", "dst", "src"}
)  # fmt: skip
EMAIL_KEYS = frozenset(
    {"dst_email", "src_email", "email", "emails", "dst_emails", "reply_to", "from_email",
     "to_email", "recipient_email"}
)  # fmt: skip
CONTENT_KEYS = frozenset(
    {"sms_content", "email_content", "whatsapp_content", "message", "text", "content", "body",
     "html", "sms_content_binary", "template_vars"}
)  # fmt: skip
#: OTP values are secrets: even a length and digest would let a reader
#: check guesses, so they are treated like passwords.
OTP_KEYS = frozenset({"otp", "code", "otp_code", "pin"})
_PII_KEYS = PHONE_KEYS | EMAIL_KEYS
#: Keys holding a time: epoch seconds (10 digits) or milliseconds (13 digits)
#: look like phone numbers to the text pattern, so under these keys (and after
#: ``key=`` / ``"key": `` in text) a number of 10 or 13 digits is left as it is.
TIME_KEYS = frozenset(
    {"ts", "time", "timestamp", "epoch", "epoch_ms", "now", "now_ms", "due", "deadline",
     "received_at", "created", "updated", "expires", "started", "finished"}
)  # fmt: skip
_TIME_SUFFIXES = ("_ms", "_at", "_ts", "_time", "_until", "_since", "_deadline")
_SECRET_WORDS = ("secret", "password", "passwd", "token", "api_key", "apikey",
                 "authorization", "cookie", "credential")  # fmt: skip

# A process-local key: digests let one read "same content as that line" within
# a process, but can't be brute-forced offline from logs (a plain SHA-256 of
# "Tu código es 123456" falls to a million guesses).
_DIGEST_KEY = secrets.token_bytes(32)

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")
_AUTH_HEADER = re.compile(r"\b(?P<kind>Basic|Bearer|Token)\s+[A-Za-z0-9+/=._~-]+", re.I)
_SECRET_PARAM = re.compile(
    r"(?P<name>\b[\w-]*(?:secret|password|passwd|token|api_?key|authorization)[\w-]*)"
    r"(?P<sep>['\"]?\s*[=:]\s*['\"]?)[^\s&,'\"]+",
    re.I,
)
# key='...' / "key": "..." for content keys, as they appear in reprs and JSON.
_CONTENT_ASSIGN = re.compile(
    r"(?P<name>\b(?:sms_content|email_content|whatsapp_content|otp|code|content|body)['\"]?)"
    r"(?P<sep>\s*[=:]\s*)(?P<q>['\"])(?:\\.|(?!(?P=q)).)*(?P=q)",
    re.S,
)
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
# 8-15 digits, optionally after '+' and split by single spaces; not inside a
# word or a UUID, not part of a dotted or dashed number (dates, versions).
_PHONE = re.compile(r"(?<![\w+-])(?<!\d\.)\+?\d(?: ?\d){7,14}(?!\w|[.-]\d)")
# What any pattern above needs before it can change a text (a superset of
# their triggers): "://", "@", an auth scheme, secret or content word, or 8
# digits. Most logged strings (ids, names, timestamps) have none, and then the
# six substitutions are skipped: they could not have matched.
_TRIGGER_WORDS = ("basic", "bearer", "token", "secret", "passw", "apikey", "api_key",
                  "authorization", "content", "otp", "code", "body")  # fmt: skip
_DIGITS8 = re.compile(r"(?<![\w+-])\+?\d(?: ?\d){7}")
# What precedes an epoch time in text: a time key, then = or : (quotes allowed).
_TIME_ASSIGN = re.compile(
    r"(?:\b(?:ts|time|timestamp|epoch|now|due|deadline)|_(?:ms|at|ts|time|until|since|deadline))"
    r"['\"]?\s*[=:]\s*['\"]?$",
    re.I,
)
_EPOCH = re.compile(r"\d{10}(?:\d{3})?")


def _maybe_sensitive(text: str) -> bool:
    # Non-ASCII text always takes the full path: under re.I some non-ASCII
    # letters match ASCII ones (e.g. "\u017f" matches "s"), which lower() can't see.
    if "://" in text or "@" in text or not text.isascii():
        return True
    lowered = text.lower()
    return any(word in lowered for word in _TRIGGER_WORDS) or _DIGITS8.search(text) is not None


def mask_phone(value: str | int) -> str:
    """``56987654321`` → ``569*****321``: country prefix and last 3 digits kept.

    At least 5 digits are always hidden (shorter numbers show less prefix);
    a leading '+' is kept, separators are dropped.
    """
    text = str(value)
    digits = re.sub(r"\D", "", text)
    if len(digits) < 8:
        return "***"
    head = max(0, min(3, len(digits) - 3 - 5))
    hidden = len(digits) - 3 - head
    plus = "+" if text.lstrip().startswith("+") else ""
    return f"{plus}{digits[:head]}{'*' * hidden}{digits[-3:]}"


def mask_email(value: str) -> str:
    """``juan.perez@empresa.cl`` → ``j***@empresa.cl`` (domain kept for support)."""
    local, sep, domain = value.strip().rpartition("@")
    if not sep or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def redact_text(text: str) -> str:
    """Cut credentials, content assignments, e-mail addresses and phone numbers out of text."""
    return _redact_all(text) if _maybe_sensitive(text) else text


def _redact_all(text: str) -> str:
    """Every substitution of :func:`redact_text`, without its shortcut."""
    text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    text = _AUTH_HEADER.sub(r"\g<kind> ***", text)
    text = _SECRET_PARAM.sub(r"\g<name>\g<sep>***", text)
    text = _CONTENT_ASSIGN.sub(r"\g<name>\g<sep>'***'", text)
    text = _EMAIL.sub(lambda match: mask_email(match.group()), text)
    return _PHONE.sub(lambda match: _mask_phone_match(match, text), text)


def _mask_phone_match(match: re.Match[str], text: str) -> str:
    """The masked number, unless it is an epoch time written after a time key."""
    number = match.group()
    if _EPOCH.fullmatch(number) and _TIME_ASSIGN.search(text, max(0, match.start() - 48),
                                                        match.start()):  # fmt: skip
        return number
    return mask_phone(number)


def summarize_content(value: object) -> str:
    """``[42 chars h:0123456789ab]``: length and a process-keyed HMAC-SHA-256 prefix."""
    text = value if isinstance(value, str) else repr(value)
    digest = hmac.new(_DIGEST_KEY, text.encode("utf-8", "replace"), hashlib.sha256)
    return f"[{len(text)} chars h:{digest.hexdigest()[:12]}]"


# What a key's value is, by the key alone; cached, because the same few keys
# come back on every line.
_PLAIN, _HIDDEN, _CONTENT, _PII, _TIME = range(5)


@functools.lru_cache(maxsize=4096)
def _key_class(key: str) -> int:
    lowered = key.lower()
    if lowered in OTP_KEYS or any(word in lowered for word in _SECRET_WORDS):
        return _HIDDEN
    if lowered in CONTENT_KEYS:
        return _CONTENT
    if lowered in _PII_KEYS:
        return _PII
    if lowered in TIME_KEYS or lowered.endswith(_TIME_SUFFIXES):
        return _TIME
    return _PLAIN


def _mask_value(value: Any, key: str | None, depth: int) -> Any:
    """The redacted form of ``value`` found under ``key`` (None at top level)."""
    if key is not None and (kind := _key_class(key)) != _PLAIN:
        if kind == _HIDDEN:
            return "***" if value is not None else None
        if kind == _CONTENT and isinstance(value, str | bytes):
            return summarize_content(value)
        if kind == _PII and isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            return mask_email(text) if "@" in text else mask_phone(text)
        if kind == _TIME and isinstance(value, str) and _EPOCH.fullmatch(value):
            return value  # an epoch time as text (a Redis hash field), not a number to mask
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return "<too deep>"
    if isinstance(value, Mapping):
        return {k: _mask_value(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        # Elements inherit the key: "dst_numbers": [...] masks each one.
        return [_mask_value(item, key, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mask_value(dataclasses.asdict(value), key, depth + 1)
    dump = getattr(value, "model_dump", None)  # pydantic models: mask field by field
    if callable(dump):
        with contextlib.suppress(Exception):  # logging must not raise: fall back to repr
            return _mask_value(dump(mode="json"), key, depth + 1)
    # Anything else would be repr()'d by the renderer, unmasked: do it here.
    return redact_text(repr(value))


#: Keys whose values the logging setup itself writes just before this
#: processor, over anything a caller passed (logging's chains): the
#: timestamp, the level and the logger's name. Nothing else is trusted.
_WRITTEN_BY_US = frozenset({"timestamp", "level", "logger"})


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask personal data and secrets in every value, recursively."""
    return {
        key: value if key in _WRITTEN_BY_US else _mask_value(value, key, 0)
        for key, value in event_dict.items()
    }
