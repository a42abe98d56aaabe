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
    check_correlation_id,
    check_max_age_s,
    check_single_line,
    normalize_email,
    normalize_number,
    parse_expires_at,
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
    #: The caller's own limit (at most one): seconds after it is due, or a time.
    max_age_s: float | None = None
    expires_at: datetime | None = None

    def fingerprint(self) -> str:
        """What makes two submissions "the same request" for idempotency.

        The limit as given (``max_age_s`` relative, not the instant it works out
        to), so that a retried submission is the same request; absent, the
        fingerprint is what it was before limits existed.
        """
        deliver_at = self.deliver_at.isoformat() if self.deliver_at else None
        shape: dict[str, Any] = {"kind": self.kind.value, "payload": self.payload, "at": deliver_at}
        if self.max_age_s is not None:
            shape["max_age_s"] = self.max_age_s
        if self.expires_at is not None:
            shape["expires_at"] = self.expires_at.isoformat()
        return fingerprint(shape)

    def expires_ms(self, now_ms: int) -> int | None:
        """The job's own expiry (epoch ms): ``max_age_s`` after it is due, or ``expires_at``."""
        if self.expires_at is not None:
            return int(self.expires_at.timestamp() * 1000)
        if self.max_age_s is None:
            return None
        due = int(self.deliver_at.timestamp() * 1000) if self.deliver_at else now_ms
        return due + int(self.max_age_s * 1000)


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
        max_age_s: float | None = None,
        expires_at: datetime | str | None = None,
    ) -> SendRequest:
        """Validate ``fields`` (Connectus names, None = absent) for ``kind``.

        ``max_age_s`` (s after it is due) or ``expires_at`` (aware): never sent
        after that (:mod:`core.expiry`); at most one of them.
        """
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
        if correlation_id is not None:
            errors.check(check_correlation_id, correlation_id)
        age, until = self._limit(errors, max_age_s, expires_at, when, now or datetime.now(UTC))
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
            max_age_s=age,
            expires_at=until,
        )

    def _limit(
        self,
        errors: ErrorCollector,
        max_age_s: float | None,
        expires_at: datetime | str | None,
        deliver_at: datetime | None,
        now: datetime,
    ) -> tuple[float | None, datetime | None]:
        """The caller's limit, checked against ``deliver_at`` and the records' life."""
        if max_age_s is not None and expires_at is not None:
            errors.add("expires_at", "give max_age_s or expires_at, not both")
            return None, None
        horizon_s = self.settings.job_ttl_s * 0.9
        if max_age_s is not None:
            age = errors.check(check_max_age_s, max_age_s)
            if age is not None and age > horizon_s:
                errors.add("max_age_s", f"is longer than the job records live "
                                        f"({horizon_s:.0f} s, 0.9 x JOB_TTL_S)")  # fmt: skip
                return None, None
            return age, None
        if expires_at is None:
            return None, None
        until = errors.check(parse_expires_at, expires_at, now=now)
        if until is None:
            return None, None
        if deliver_at is not None and until <= deliver_at:
            errors.add("expires_at", "is not after deliver_at: the message would expire "
                                     "before it is due")  # fmt: skip
        elif until > (deliver_at or now) + timedelta(seconds=horizon_s):
            errors.add("expires_at", f"is more than the job records live after it is due "
                                     f"({horizon_s:.0f} s, 0.9 x JOB_TTL_S)")  # fmt: skip
        return None, until

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
            check_single_line, f.get("subject"), field="subject", max_chars=SUBJECT_MAX_CHARS
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
