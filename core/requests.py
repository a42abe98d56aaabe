"""Validated send requests: what a producer turns its arguments into.

Every check runs before anything is enqueued, and all failing fields are
reported together (:class:`core.validation.InvalidInput`), each named with
its reason. Field names follow Connectus's (``dst_number``, ``sms_content``,
``dst_email``, ``whatsapp_content``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Settings
from core.deliver_at import parse_deliver_at
from core.hashing import fingerprint
from core.models import Kind
from core.routing import Priority
from core.validation import (
    EMAIL_MAX_CHARS,
    SMS_MAX_CHARS,
    WHATSAPP_MAX_CHARS,
    ErrorCollector,
    check_content,
    normalize_email,
    normalize_number,
    sms_segments,
    validate_idempotency_key,
)

SUBJECT_MAX_CHARS = 998  # RFC 5322 line limit
ID_MAX_CHARS = 64


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A validated, normalised send. ``payload`` holds Connectus's fields."""

    kind: Kind
    payload: dict[str, Any]
    dst: str
    segments: int | None
    idempotency_key: str | None
    deliver_at: datetime | None
    priority: Priority = "transactional"
    correlation_id: str | None = None

    def fingerprint(self) -> str:
        """What makes two submissions "the same request" for idempotency."""
        deliver_at = self.deliver_at.isoformat() if self.deliver_at else None
        return fingerprint({"kind": self.kind.value, "payload": self.payload, "at": deliver_at})


class RequestBuilder:
    """Validates producer arguments into :class:`SendRequest` objects."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build(
        self,
        kind: Kind,
        fields: dict[str, Any],
        *,
        idempotency_key: str | None,
        deliver_at: datetime | str | None,
        priority: Priority = "transactional",
        correlation_id: str | None = None,
        now: datetime | None = None,
    ) -> SendRequest:
        """Validate ``fields`` (Connectus names, None = absent) for ``kind``."""
        errors = ErrorCollector()
        payload, dst, segments = _CHECKS[kind](self, errors, fields)
        for name in ("id_client", "id_delivery"):
            value = fields.get(name)
            if value is None:
                continue
            if kind not in (Kind.SMS, Kind.EMAIL, Kind.WHATSAPP):
                errors.add(name, f"is not accepted by Connectus for {kind.value} sends")
            elif not isinstance(value, str) or not value.strip() or len(value) > ID_MAX_CHARS:
                errors.add(name, f"must be a non-empty string of at most {ID_MAX_CHARS} characters")
            else:
                payload[name] = value.strip()
        key = None
        if idempotency_key is not None:
            key = errors.check(validate_idempotency_key, idempotency_key)
        when = errors.check(
            parse_deliver_at, deliver_at, tz=self.settings.default_timezone, now=now
        )
        if when is not None:
            horizon = (now or datetime.now(UTC)) + timedelta(seconds=self.settings.job_ttl_s * 0.9)
            if when > horizon:
                errors.add("deliver_at", "is later than the job records live (JOB_TTL_S)")
        if priority not in ("transactional", "bulk"):
            errors.add("priority", "must be 'transactional' or 'bulk'")
        errors.raise_if_any()
        return SendRequest(
            kind=kind,
            payload=payload,
            dst=dst,
            segments=segments,
            idempotency_key=key,
            deliver_at=when,
            priority=priority,
            correlation_id=correlation_id,
        )

    # -- per kind: (payload, destination, segments) --------------------------

    def _sms(
        self, errors: ErrorCollector, f: dict[str, Any]
    ) -> tuple[dict[str, Any], str, int | None]:
        region = self.settings.default_region
        dst = errors.check(
            normalize_number, f.get("dst_number"), field="dst_number", default_region=region
        )
        content = errors.check(
            check_content, f.get("sms_content"), field="sms_content", max_chars=SMS_MAX_CHARS
        )
        payload: dict[str, Any] = {"dst_number": dst, "sms_content": content}
        if f.get("src_number") is not None:
            payload["src_number"] = errors.check(
                _src_number, f["src_number"], default_region=region
            )
        return payload, dst or "", sms_segments(content) if content else None

    def _otp(
        self, errors: ErrorCollector, f: dict[str, Any]
    ) -> tuple[dict[str, Any], str, int | None]:
        payload, dst, segments = self._sms(errors, f)
        # Ask Connectus to keep only a hash of the code.
        payload["save_content"] = "hash"
        return payload, dst, segments

    def _email(
        self, errors: ErrorCollector, f: dict[str, Any]
    ) -> tuple[dict[str, Any], str, int | None]:
        dst = errors.check(normalize_email, f.get("dst_email"), field="dst_email")
        subject = errors.check(
            check_content, f.get("subject"), field="subject", max_chars=SUBJECT_MAX_CHARS
        )
        content = errors.check(
            check_content, f.get("email_content"), field="email_content", max_chars=EMAIL_MAX_CHARS
        )
        src = f.get("src_email") or self.settings.connectus_default_src_email
        if src is None:
            errors.add("src_email", "is required (or set CONNECTUS_DEFAULT_SRC_EMAIL)")
        else:
            src = errors.check(normalize_email, src, field="src_email")
        payload = {"dst_email": dst, "src_email": src, "subject": subject, "email_content": content}
        return payload, dst or "", None

    def _whatsapp(
        self, errors: ErrorCollector, f: dict[str, Any]
    ) -> tuple[dict[str, Any], str, int | None]:
        region = self.settings.default_region
        dst = errors.check(
            normalize_number, f.get("dst_number"), field="dst_number", default_region=region
        )
        content = errors.check(
            check_content,
            f.get("whatsapp_content"),
            field="whatsapp_content",
            max_chars=WHATSAPP_MAX_CHARS,
        )
        src = f.get("src_number")
        if src is None:
            errors.add(
                "src_number", "is required: the WhatsApp origin number assigned to the account"
            )
        else:
            src = errors.check(_src_number, src, default_region=region)
        payload = {"src_number": src, "dst_number": dst, "whatsapp_content": content}
        return payload, dst or "", None

    def _whatsapp_qr(
        self, errors: ErrorCollector, f: dict[str, Any]
    ) -> tuple[dict[str, Any], str, int | None]:
        region = self.settings.default_region
        number = errors.check(
            normalize_number, f.get("number"), field="number", default_region=region
        )
        message = errors.check(
            check_content, f.get("message"), field="message", max_chars=WHATSAPP_MAX_CHARS
        )
        return {"number": number, "message": message}, number or "", None


def _src_number(value: Any, *, default_region: str) -> str:
    """A source number: a full number, or a short code (3 to 8 digits) like ``4374``."""
    text = str(value).strip()
    if text.isdigit() and 3 <= len(text) <= 8:
        return text
    return normalize_number(text, field="src_number", default_region=default_region)


_CHECKS = {
    Kind.SMS: RequestBuilder._sms,
    Kind.OTP: RequestBuilder._otp,
    Kind.EMAIL: RequestBuilder._email,
    Kind.OTP_EMAIL: RequestBuilder._email,
    Kind.WHATSAPP: RequestBuilder._whatsapp,
    Kind.WHATSAPP_QR: RequestBuilder._whatsapp_qr,
}
