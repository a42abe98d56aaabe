"""Connectus accounts: one deployment sending through several of them.

``CONNECTUS_ACCOUNTS`` names them in order (default: ``default``); the first is the
account of a job whose request and tenant (``TENANT_ACCOUNTS``) name none. The
account ``default`` reads the single-account variables (``CONNECTUS_API_USER``,
``CONNECTUS_BASE_URL``..., ``RATE_*``, ``WEBHOOK_*``); any other ``<name>`` reads
them prefixed, ``CONNECTUS_<NAME>_<SUFFIX>`` (:data:`SUFFIXES`). A URL or rate it does
not set is the unprefixed one; a webhook credential is never borrowed (each
account's webhook routes are opened by its own). Variables per account, not one
JSON variable: each key comes from its own Kubernetes secret (``envFrom`` with
``prefix:``), and a rotated key touches one secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from connectus_worker.config import checks
from connectus_worker.config.checks import ConfigError
from connectus_worker.config.tenants import tenant_problem

DEFAULT_ACCOUNT = "default"
ACCOUNT_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
#: Rates an account may set for itself (tokens/s and tokens, as the RATE_* settings).
RATE_FIELDS = tuple(
    f"rate_{product}_{unit}"
    for product in ("sms", "otp", "email", "whatsapp")
    for unit in ("per_s", "burst")
)
# The account "default"'s setting of each (the others' is the field's own name).
_SETTING_OF = {
    "api_user": "connectus_api_user",
    "api_key": "connectus_api_key",
    "base_url": "connectus_base_url",
    "v1_base_url": "connectus_v1_base_url",
    "whatsapp_qr_url": "connectus_whatsapp_qr_url",
}
_CONNECTUS_FIELDS = tuple(_SETTING_OF)
_WEBHOOK_FIELDS = ("webhook_secret", "webhook_basic_user", "webhook_basic_password")
#: The per-account variables: CONNECTUS_<NAME>_<SUFFIX>.
SUFFIXES = tuple(f.upper() for f in (*_CONNECTUS_FIELDS, *RATE_FIELDS, *_WEBHOOK_FIELDS))
Rate = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Burst = Annotated[int, Field(gt=0)]


class Account(BaseModel):
    """One Connectus account: credentials, endpoints, rates (tokens/s and tokens) and
    webhook credentials. Secrets are ``SecretStr``: a repr shows ``**********``."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str
    api_user: str | None = None
    api_key: SecretStr | None = None
    base_url: str
    v1_base_url: str
    whatsapp_qr_url: str
    rate_sms_per_s: Rate
    rate_sms_burst: Burst
    rate_otp_per_s: Rate
    rate_otp_burst: Burst
    rate_email_per_s: Rate
    rate_email_burst: Burst
    rate_whatsapp_per_s: Rate
    rate_whatsapp_burst: Burst
    webhook_secret: SecretStr | None = None
    webhook_basic_user: str | None = Field(default=None, pattern=r"^[^:\s]{1,64}$")
    webhook_basic_password: SecretStr | None = None

    _check_url = field_validator(*_CONNECTUS_FIELDS[2:])(checks.check_http_url)
    _check_user = field_validator("api_user")(checks.check_user)
    _check_secret = field_validator("webhook_secret")(checks.check_webhook_secret)
    _check_password = field_validator("webhook_basic_password")(checks.check_basic_password)

    def variable(self, field: str) -> str:
        """The environment variable of ``field`` for this account."""
        if self.name != DEFAULT_ACCOUNT:
            return f"CONNECTUS_{self.name.upper()}_{field.upper()}"
        return _SETTING_OF.get(field, field).upper()

    def credentials(self) -> tuple[str, str]:
        """(API user, API key), or a :class:`ConfigError` naming the missing variable."""
        if not self.api_user:
            raise ConfigError(self.variable("api_user"), "is required to call Connectus")
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ConfigError(self.variable("api_key"), "is required to call Connectus")
        return self.api_user, self.api_key.get_secret_value()


def parse_account_names(text: str, setting_names: frozenset[str]) -> tuple[str, ...]:
    """``a,b`` as names in order; ``ValueError`` with the reason (bad, duplicate,
    or a name whose CONNECTUS_<NAME>_* variables would be a setting's, e.g. ``v1``)."""
    names: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not re.match(ACCOUNT_PATTERN, name):
            raise ValueError(f"account {name!r} must be 1-32 of a-z 0-9 _ starting with a letter")
        if name in names:
            raise ValueError(f"account {name!r} is named twice")
        if name != DEFAULT_ACCOUNT:
            clash = [s for s in SUFFIXES if f"connectus_{name}_{s.lower()}" in setting_names]
            if clash:
                raise ValueError(
                    f"account {name!r}: CONNECTUS_{name.upper()}_{clash[0]} is another setting"
                )
        names.append(name)
    return tuple(names)


def parse_tenant_accounts(text: str, accounts: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``tenant:account|account,tenant:account`` as {tenant: its accounts}: the first is
    its default, and it may send through those only. Each must be in ``accounts``."""
    found: dict[str, tuple[str, ...]] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        tenant, colon, names = (s.strip() for s in entry.partition(":"))
        if not colon or tenant_problem(tenant) is not None or not names:
            raise ValueError(f"entry {entry!r} must be tenant:account[|account...]")
        if tenant in found:
            raise ValueError(f"tenant {tenant!r} is named twice")
        own = tuple(name.strip() for name in names.split("|"))
        unknown = [name for name in own if name not in accounts]
        if unknown:
            raise ValueError(f"tenant {tenant!r}: account {unknown[0]!r} is not in "
                             "CONNECTUS_ACCOUNTS")  # fmt: skip
        found[tenant] = own
    return found


def _inherited(settings: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The single-account settings of ``fields``."""
    return {field: getattr(settings, _SETTING_OF.get(field, field)) for field in fields}


def default_account(settings: Any) -> Account:
    """The account ``default`` from the single-account settings (``CONNECTUS_API_USER``...)."""
    every = (*_CONNECTUS_FIELDS, *RATE_FIELDS, *_WEBHOOK_FIELDS)
    return Account(name=DEFAULT_ACCOUNT, **_inherited(settings, every))


def named_accounts(
    settings: Any, names: tuple[str, ...], environ: Mapping[str, str]
) -> dict[str, Account]:
    """Every account but ``default``, from ``CONNECTUS_<NAME>_*`` in ``environ``.

    Raises :class:`ConfigError`: a variable of an account not listed, a bad value.
    """
    upper = {key.upper(): value for key, value in environ.items()}
    known = {f"CONNECTUS_{n.upper()}_{s}" for n in names if n != DEFAULT_ACCOUNT for s in SUFFIXES}
    fields = {name.upper() for name in type(settings).model_fields}
    for key in sorted(upper):
        stray = key.startswith("CONNECTUS_") and key not in fields and key not in known
        if stray and any(key.endswith(f"_{suffix}") for suffix in SUFFIXES):
            raise ConfigError(key, f"names no account of CONNECTUS_ACCOUNTS ({','.join(names)})")
    inherited = _inherited(settings, (*_CONNECTUS_FIELDS[2:], *RATE_FIELDS))
    accounts: dict[str, Account] = {}
    for name in (n for n in names if n != DEFAULT_ACCOUNT):
        values = dict(inherited)
        for suffix in SUFFIXES:
            value = upper.get(f"CONNECTUS_{name.upper()}_{suffix}")
            if value:
                values[suffix.lower()] = value
        try:
            accounts[name] = Account.model_validate({"name": name, **values})
        except ValidationError as exc:
            error = exc.errors()[0]
            variable = f"CONNECTUS_{name.upper()}_{str(error['loc'][0]).upper()}"
            reason = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
            raise ConfigError(variable, reason) from exc
    return accounts


def read_named_accounts(
    settings: Any, environ: Mapping[str, str] | None, env_file: str | None
) -> dict[str, Account]:
    """Every named account of ``settings`` from ``environ`` (None: the process's
    environment and ``env_file``); :class:`ConfigError` for a bad one, a
    published sample secret or placeholder outside sandbox/demo, or an API user of
    two accounts (they would share one provider limit and balance under two limiters)."""
    if environ is None:
        from dotenv import dotenv_values

        file_values = dotenv_values(env_file) if env_file else {}
        environ = {**{k: v for k, v in file_values.items() if v is not None}, **os.environ}
    named = named_accounts(settings, settings.account_names, environ)
    for account in named.values():  # as for every other secret setting
        sample = checks.find_sample_secret(account, settings.run_mode)
        if sample is not None:
            raise ConfigError(account.variable(sample[0]), sample[1])
    seen: dict[str, str] = {}
    for name in settings.account_names:
        account = named.get(name) or default_account(settings)
        if account.api_user in seen:
            raise ConfigError(
                account.variable("api_user"),
                f"is the API user of account {seen[account.api_user]!r} too "
                "(one Connectus account, one name)",
            )
        if account.api_user:
            seen[account.api_user] = name
    return named


def require_webhook_credentials(settings: Any) -> None:
    """:class:`ConfigError` naming the first webhook credential an account lacks for
    ``WEBHOOK_AUTH`` (each account's routes are opened by its own; the ``default``
    routes, ``WEBHOOK_*``, are always served)."""
    needed = ("webhook_secret",) if settings.webhook_auth == "token" else (
        "webhook_basic_user", "webhook_basic_password")  # fmt: skip
    named = [settings.account(n) for n in settings.account_names if n != DEFAULT_ACCOUNT]
    for own in (default_account(settings), *named):
        for field in needed:
            if not getattr(own, field):
                reason = f"is required when WEBHOOK_AUTH={settings.webhook_auth}"
                raise ConfigError(own.variable(field), reason)
