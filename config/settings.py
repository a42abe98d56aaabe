"""Settings: read once at start-up into a frozen object that is passed in.

Nothing in the project reads the environment at import time. Entry points
(the CLI, the worker process, the HTTP service, tests) call
:func:`load_settings` once and hand the result down. A missing or malformed
variable raises :class:`ConfigError`, whose message names the environment
variable and the reason, so start-up fails loudly instead of half-working.

Every field maps to the upper-case environment variable of the same name
(``redis_url`` ← ``REDIS_URL``). Units are in the names: ``_s`` seconds,
``_ms`` milliseconds.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"{variable}: {reason}")


class Settings(BaseSettings):
    """All settings of the worker, the producers, the CLI and the service."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        env_file=None,
        hide_input_in_errors=True,
    )

    # --- Redis -------------------------------------------------------------
    # repr=False: the URL may carry a password.
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", repr=False)
    key_prefix: str = Field(default="cw", pattern=r"^[A-Za-z0-9_.-]{1,32}$")

    # --- Connectus account and endpoints -----------------------------------
    connectus_api_user: str | None = None
    connectus_api_key: SecretStr | None = None
    connectus_base_url: str = "https://plataforma.connectus.la"
    connectus_v1_base_url: str = "https://api.connectus.cl"
    connectus_whatsapp_qr_url: str = "https://whatsappqr.connectus.la"
    connectus_connect_timeout_s: PositiveFloat = 3.0
    connectus_read_timeout_s: PositiveFloat = 10.0
    connectus_pool_size: PositiveInt = 100
    # Used when a producer names no origin (both must be validated on the platform).
    connectus_default_src_email: str | None = Field(
        default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    connectus_whatsapp_src_number: str | None = Field(default=None, pattern=r"^\d{3,15}$")

    # --- Retries -----------------------------------------------------------
    # In-process (tenacity): quick retries of transient failures.
    retry_attempts: PositiveInt = 3
    retry_initial_backoff_ms: PositiveInt = 200
    retry_max_backoff_ms: PositiveInt = 5_000
    # Durable (Dramatiq re-enqueue with delay): long outages never pin threads.
    durable_max_retries: NonNegativeInt = 20
    durable_min_backoff_ms: PositiveInt = 15_000
    durable_max_backoff_ms: PositiveInt = 900_000
    max_message_age_s: PositiveInt = 86_400

    # --- Queues ------------------------------------------------------------
    queue_otp: str = Field(default="otp", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    queue_transactional: str = Field(default="transactional", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    queue_bulk: str = Field(default="bulk", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    # --- Jobs --------------------------------------------------------------
    job_ttl_s: PositiveInt = 7 * 86_400
    default_timezone: str = "America/Santiago"
    default_region: str = Field(default="CL", pattern=r"^[A-Z]{2}$")

    # --- Worker processes --------------------------------------------------
    worker_processes: PositiveInt = 2
    worker_threads: PositiveInt = 16
    worker_shutdown_grace_s: PositiveFloat = 30.0
    # How often the broker maintenance runs (re-queues messages of dead
    # workers); Dramatiq's default of 0.1% of calls recovers in ~10 min.
    broker_maintenance_interval_s: PositiveFloat = 15.0
    broker_heartbeat_timeout_s: PositiveFloat = 60.0

    # --- Logging -----------------------------------------------------------
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = True

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must start with redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("has no host")
        return value

    @field_validator("connectus_base_url", "connectus_v1_base_url", "connectus_whatsapp_qr_url")
    @classmethod
    def _check_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("connectus_api_user")
    @classmethod
    def _check_user(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty")
        return value

    @property
    def queues(self) -> tuple[str, str, str]:
        """The queue names, most urgent first."""
        return (self.queue_otp, self.queue_transactional, self.queue_bulk)

    def require_connectus_credentials(self) -> tuple[str, str]:
        """Return (user, key) or fail naming the missing variable.

        Producers never need the credentials; workers and the CLI commands
        that call Connectus do, so they check at start-up.
        """
        if not self.connectus_api_user:
            raise ConfigError("CONNECTUS_API_USER", "is required to call Connectus")
        if self.connectus_api_key is None or not self.connectus_api_key.get_secret_value():
            raise ConfigError("CONNECTUS_API_KEY", "is required to call Connectus")
        return self.connectus_api_user, self.connectus_api_key.get_secret_value()


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: str | None = None,
    **overrides: Any,
) -> Settings:
    """Read the settings once.

    ``environ`` replaces ``os.environ`` (tests pass a dict); ``env_file``
    names an optional ``.env`` file; ``overrides`` win over both.
    Raises :class:`ConfigError` naming the first bad variable.
    """
    try:
        if environ is None:
            return Settings(_env_file=env_file, **overrides)
        known = {name.upper() for name in Settings.model_fields}
        values: dict[str, Any] = {
            key.lower(): value for key, value in environ.items() if key.upper() in known
        }
        values.update(overrides)
        return Settings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        raise ConfigError(field.upper(), _reason(error)) from exc


def _reason(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")
