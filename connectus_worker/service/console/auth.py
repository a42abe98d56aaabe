"""The console's login, session cookie, CSRF check and roles.

- **Session**: a cookie ``cw_console`` signed with ``CONSOLE_SECRET_KEY``
  (itsdangerous, timestamped: older than ``CONSOLE_SESSION_TTL_S`` is refused),
  ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came over https.
  It holds the operator's name, a CSRF token and a fingerprint of the
  operator's password hash: changing a password (or removing the operator)
  ends their sessions. The role is read from the settings on every request.
- **CSRF**: every POST must carry the session's token, as the form field
  ``csrf_token`` or the header ``X-CSRF-Token``; without it, 403. The login
  form has one too (an anonymous session is set when it is shown), so another
  site cannot log a browser in as someone else.
- **Roles**: ``read-only`` sees every page and acts on nothing (403).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from connectus_worker.config.console_users import Operator

COOKIE = "cw_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: Largest console form accepted, in bytes (a dead-letter selection of 1,000 ids fits).
MAX_FORM_BYTES = 128 * 1024


class Refused(Exception):
    """Answered as ``status`` with ``reason`` (401 not logged in, 403 not allowed, 413)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator | None
    csrf: str


def new_csrf() -> str:
    """A fresh CSRF token (one per session: a login makes a new one)."""
    return secrets.token_urlsafe(24)


class Sessions:
    """Reads and writes the session cookie; ``users`` from ``CONSOLE_USERS``."""

    def __init__(self, users: dict[str, Operator], secret: str, *, ttl_s: int) -> None:
        self.users = users
        self.ttl_s = ttl_s
        self.secret = secret.encode()
        self.signer = URLSafeTimedSerializer(secret, salt="connectus-console-session")

    def read(self, request: Request) -> Session | None:
        """The request's valid session (anonymous or an operator's), or None."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data: Any = self.signer.loads(raw, max_age=self.ttl_s)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        operator = None
        if data.get("u"):
            operator = self.users.get(str(data["u"]))
            if operator is None or not hmac.compare_digest(
                str(data.get("h", "")), self._fingerprint(operator)
            ):
                return None  # removed, or the password changed since
        return Session(operator, data["c"])

    def write(self, request: Request, response: Response, operator: Operator | None,
              csrf: str) -> None:  # fmt: skip
        """Set the session (``operator``, or anonymous: None) with ``csrf`` on ``response``."""
        data = {"u": operator.name if operator else "", "c": csrf,
                "h": self._fingerprint(operator) if operator else ""}  # fmt: skip
        response.set_cookie(COOKIE, self.signer.dumps(data), max_age=self.ttl_s, path="/ui",
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")  # fmt: skip

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/ui")

    def logged_in(self, request: Request) -> Session:
        """The request's session, an operator's; :class:`Refused` 401 otherwise."""
        session = self.read(request)
        if session is None or session.operator is None:
            raise Refused(401, "log in first")
        return session

    async def form(self, request: Request, *, act: bool) -> tuple[Operator | None, dict[str, str],
                                                                   list[str]]:  # fmt: skip
        """Check a POST (session, CSRF, role if ``act``) and parse its form.

        Returns (operator or None for the login form, single fields, the ``job_id``
        list). 401 without a session, 403 without the CSRF token or the role.
        """
        session = self.read(request)
        if session is None:
            raise Refused(403, "no session: reload the page (cookies must be enabled)")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise Refused(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        token = request.headers.get(CSRF_HEADER) or (fields.get(CSRF_FIELD) or [""])[0]
        if not hmac.compare_digest(token.encode(), session.csrf.encode()):
            raise Refused(403, "missing or wrong CSRF token: reload the page and try again")
        if act:
            if session.operator is None:
                raise Refused(401, "log in first")
            if not session.operator.can_act:
                raise Refused(403, f"{session.operator.name} is read-only: can't act")
        single = {k: v[0] for k, v in fields.items() if k != "job_id"}
        return session.operator, single, fields.get("job_id", [])

    def _fingerprint(self, operator: Operator) -> str:
        digest = hmac.new(self.secret, operator.password_hash.encode(), hashlib.sha256)
        return digest.hexdigest()[:16]
