"""Who may call: intake bearer tokens and the webhook secret or Basic credentials,
as FastAPI dependencies (their security schemes documented by FastAPI).

Every comparison is constant-time over SHA-256 digests of equal length, and
every configured token is compared (no early exit), so neither the position
of a matching token nor a common prefix shows in the response time.
"""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import APIKeyQuery, HTTPBasic, HTTPBearer

from connectus_worker.config import Settings
from connectus_worker.config.accounts import DEFAULT_ACCOUNT, default_account
from connectus_worker.service.problems import ProblemError


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


class _DocumentedBasic(HTTPBasic):
    """Basic auth in the OpenAPI document only: :class:`WebhookAuth` reads the header
    (FastAPI's own parser decodes ASCII only, and answers its own 401)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


_BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description="INTAKE_TOKENS")
_WEBHOOK_SCHEMES = {
    "token": APIKeyQuery(name="token", auto_error=False, scheme_name="webhookToken",
                         description="WEBHOOK_SECRET (WEBHOOK_AUTH=token)"),
    "basic": _DocumentedBasic(auto_error=False, scheme_name="webhookBasic",
                              description="WEBHOOK_BASIC_USER/PASSWORD (WEBHOOK_AUTH=basic)"),
}  # fmt: skip


class BearerAuth:
    """A dependency: the caller's tenant, from ``Authorization: Bearer <token>`` checked
    against the tenants' tokens (``INTAKE_TENANTS``, and ``INTAKE_TOKENS`` for ``default``:
    config/tenants.py)."""

    def __init__(self, tenants: Mapping[str, tuple[str, ...]]) -> None:
        self._digests = [
            (_digest(token), tenant) for tenant, tokens in tenants.items() for token in tokens
        ]

    async def __call__(self, credentials: Annotated[Any, Security(_BEARER)]) -> str:
        token = credentials.credentials.strip() if credentials else ""
        if not token:
            raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        given = _digest(token)
        tenant = ""
        for digest, owner in self._digests:
            # Every token compared, no early exit; a token belongs to one tenant
            # (checked at start-up), so at most one matches.
            if hmac.compare_digest(given, digest):
                tenant = owner
        if not tenant:
            raise _unauthorized("the bearer token is not valid")
        return tenant


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="connectus"'})


class WebhookAuth:
    """``WEBHOOK_AUTH=token``: ``?token=<WEBHOOK_SECRET>``; ``basic``: HTTP Basic.

    ``account``: whose webhook credentials (``CONNECTUS_<NAME>_WEBHOOK_*``; the
    account ``default``: ``WEBHOOK_*``), so one account's secret opens its own routes only.
    """

    def __init__(self, settings: Settings, account: str = DEFAULT_ACCOUNT) -> None:
        self.mode = settings.webhook_auth
        own = default_account(settings) if account == DEFAULT_ACCOUNT else settings.account(account)
        secret = own.webhook_secret
        password = own.webhook_basic_password
        self._secret = _digest(secret.get_secret_value()) if secret else None
        self._user = _digest(own.webhook_basic_user or "")
        self._password = _digest(password.get_secret_value()) if password else None

    def check(self, request: Request) -> None:
        """Raise a 401 problem unless the request carries the configured credentials."""
        if self.mode == "token":
            given = request.query_params.get("token")
            if (
                self._secret is None
                or not given
                or not hmac.compare_digest(_digest(given), self._secret)
            ):
                raise ProblemError(401, "a valid webhook token is required (?token=...)")
            return
        user, password = _basic_credentials(request)
        # Both compared, always: which half was wrong must not show in the timing.
        user_ok = hmac.compare_digest(_digest(user), self._user)
        password_ok = self._password is not None and hmac.compare_digest(
            _digest(password), self._password
        )
        if not (user_ok and password_ok):
            raise ProblemError(
                401,
                "valid Basic credentials are required",
                headers={"WWW-Authenticate": 'Basic realm="connectus-webhooks"'},
            )


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def webhook_account(auths: Mapping[str, WebhookAuth], mode: str) -> Callable[..., Awaitable[str]]:
    """A dependency: the route's Connectus account (``default`` without one in the path),
    once its own credentials are checked (401; an account not configured here: 404)."""

    async def account(request: Request, _: Annotated[Any, Security(_WEBHOOK_SCHEMES[mode])]) -> str:
        name = str(request.path_params.get("account", DEFAULT_ACCOUNT))
        auth = auths.get(name)
        if auth is None:
            raise ProblemError(404, "no webhook of that Connectus account here")
        auth.check(request)
        return name

    return account
