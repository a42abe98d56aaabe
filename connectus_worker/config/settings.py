"""Settings: read once at start-up into a frozen object that is passed in.

Nothing reads the environment at import time: entry points call :func:`load_settings`
once and hand the result down. A missing or malformed variable raises
:class:`ConfigError` naming the variable. Each field is the upper-case variable of
the same name (``redis_url`` ← ``REDIS_URL``; described in the README's table);
units are in the names: ``_s`` seconds, ``_ms`` milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectus_worker.config import accounts as acc
from connectus_worker.config import checks
from connectus_worker.config.checks import ConfigError
from connectus_worker.config.tenants import DEFAULT_TENANT, parse_tenants

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class Settings(BaseSettings):
    """All settings of the worker, the producers, the CLI and the service."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        env_file=None,
        hide_input_in_errors=True,
        # No setting means inf or nan: a timeout of inf crash-loops the workers.
        allow_inf_nan=False,
    )

    # production refuses the secrets published in this repository.
    run_mode: Literal["production", "sandbox", "demo"] = "production"
    # Key of every kept digest of content: without it a digest of a 6-digit code is
    # reversed in a second. Required in production; sandbox/demo: DEV_CONTENT_HASH_KEY.
    content_hash_key: SecretStr | None = None

    # --- Redis -------------------------------------------------------------
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", repr=False)  # may hold a password
    # At most one Redis Cluster hash tag ("{acme}"): every key then hashes on it,
    # one slot (docs/scaling.md). Never ':' (it separates the key namespaces).
    key_prefix: str = Field(
        default="cw",
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_.-]*(\{[A-Za-z0-9_.-]+\})?[A-Za-z0-9_.-]*$",
    )
    redis_sentinels: str = ""
    redis_sentinel_master: str = Field(default="mymaster", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    redis_sentinel_password: SecretStr | None = None
    redis_password: SecretStr | None = None  # of the data nodes (else REDIS_URL's)
    # Claims and enqueues confirmed by replicas (WAIT), 0: the local AOF (durability.py).
    redis_min_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    redis_wait_timeout_ms: Annotated[int, Field(gt=0, le=60_000)] = 1000

    # --- Connectus accounts and endpoints (config/accounts.py) --------------
    connectus_accounts: str = acc.DEFAULT_ACCOUNT
    tenant_accounts: str | None = None
    connectus_api_user: str | None = None
    connectus_api_key: SecretStr | None = None
    connectus_base_url: str = "https://plataforma.connectus.la"
    connectus_v1_base_url: str = "https://api.connectus.cl"
    connectus_whatsapp_qr_url: str = "https://whatsappqr.connectus.la"
    connectus_connect_timeout_s: PositiveFloat = 3.0
    connectus_read_timeout_s: PositiveFloat = 10.0
    connectus_write_timeout_s: PositiveFloat = 5.0  # counted in the send lease
    # A whole request: a server trickling its answer is cut off past it.
    connectus_request_deadline_s: PositiveFloat = 15.0
    # Largest answer read, in bytes (decoded): a send or lookup, and a listing.
    connectus_max_response_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    connectus_max_listing_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    connectus_default_src_email: str | None = Field(
        default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    connectus_whatsapp_src_number: str | None = Field(default=None, pattern=r"^\d{3,15}$")

    # --- Retries -----------------------------------------------------------
    # In-process (tenacity) quick retries, then durable ones (re-enqueued with a delay:
    # long outages never pin threads).
    retry_attempts: PositiveInt = 3
    retry_initial_backoff_ms: PositiveInt = 200
    retry_max_backoff_ms: PositiveInt = 5_000
    durable_max_retries: NonNegativeInt = 20
    durable_min_backoff_ms: PositiveInt = 15_000
    durable_max_backoff_ms: PositiveInt = 900_000
    max_message_age_s: PositiveInt = 86_400
    otp_max_age_s: PositiveInt = 300
    # Added to the send lease on top of the worst-case attempts: a live but slow
    # worker must never lose its lease mid-send.
    lease_margin_s: PositiveFloat = 30.0

    # --- Reconciliation of ambiguous sends ---------------------------------
    reconcile_after_s: PositiveFloat = 30.0
    reconcile_window_s: PositiveFloat = 300.0
    reconcile_interval_s: PositiveFloat = 5.0
    # E-mail has no listing to look a message up in.
    reconcile_undecidable: str = Field(default="review", pattern=r"^(review|resend|drop)$")

    # --- Queues and jobs ---------------------------------------------------
    queue_otp: QueueName = "otp"
    queue_transactional: QueueName = "transactional"
    queue_bulk: QueueName = "bulk"
    job_ttl_s: PositiveInt = 7 * 86_400
    default_timezone: str = "America/Santiago"
    default_region: str = Field(default="CL", pattern=r"^[A-Z]{2}$")

    # --- Campaigns -----------------------------------------------------------
    campaign_ttl_s: PositiveInt = 30 * 86_400
    campaign_max_lateness_s: Annotated[int, Field(ge=0)] = 6 * 3600
    # Bounds Redis memory and what a pause stops.
    campaign_max_pending: Annotated[int, Field(ge=1000)] = 20_000
    campaign_delivery_lead_s: Annotated[int, Field(ge=1, le=3600)] = 5
    campaign_status_poll_after_s: PositiveInt = 600
    qr_status_interval_s: Annotated[float, Field(ge=0)] = 30.0
    status_poll_interval_s: PositiveInt = 60
    status_poll_max_age_s: PositiveInt = 2 * 86_400
    balance_snapshot_interval_s: PositiveInt = 60

    # --- Worker processes --------------------------------------------------
    worker_processes: PositiveInt = 2
    worker_threads: PositiveInt = 32
    worker_shutdown_grace_s: PositiveFloat = 30.0
    # Dramatiq's own maintenance (0.1% of calls) recovers dead workers' messages
    # in ~10 min; this runs it on a clock.
    broker_maintenance_interval_s: PositiveFloat = 15.0
    # An idle tick of the housekeeper costs each process about 3 Redis commands.
    housekeeping_interval_s: PositiveFloat = 0.2
    broker_heartbeat_timeout_s: PositiveFloat = 60.0
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9191
    worker_metrics_host: str = Field(default="127.0.0.1", pattern=r"^[A-Za-z0-9.:_-]{1,253}$")

    # --- HTTP service (``connectus serve``) ----------------------------------
    intake_tokens: SecretStr | None = None
    intake_tenants: SecretStr | None = None
    intake_max_body_bytes: Annotated[int, Field(gt=0, le=16 * 1024 * 1024)] = 256 * 1024
    # A client that announces a body and stops sending must not hold a slot (408).
    http_body_timeout_s: Annotated[float, Field(gt=0, le=600)] = 15.0
    intake_idempotency_ttl_s: PositiveInt = 86_400
    webhook_auth: Literal["token", "basic"] = "token"
    webhook_secret: SecretStr | None = None
    webhook_basic_user: str | None = Field(default=None, pattern=r"^[^:\s]{1,64}$")
    webhook_basic_password: SecretStr | None = None
    webhook_max_body_bytes: Annotated[int, Field(gt=0, le=1024 * 1024)] = 64 * 1024
    opt_out_keywords: str = "STOP,BAJA,SALIR"
    opt_in_keywords: str = "ALTA,START"
    events_stream_maxlen: Annotated[int, Field(ge=1_000)] = 100_000  # XADD MAXLEN ~
    # /metrics is unauthenticated: campaign ids and names only when true.
    metrics_campaign_labels: bool = False

    # --- Operator console (docs/console.md) ----------------------------------
    console_users: SecretStr | None = None
    console_secret_key: SecretStr | None = None
    console_session_ttl_s: Annotated[int, Field(ge=60, le=7 * 86_400)] = 8 * 3600

    # --- Rate limits (docs/ratelimit.md): per account and product, in every pod --
    # tokens (sends) per second, and burst in tokens; OTP has its own bucket so
    # that a campaign can never starve it.
    rate_sms_per_s: PositiveFloat = 50.0
    rate_sms_burst: PositiveInt = 50
    rate_otp_per_s: PositiveFloat = 20.0
    rate_otp_burst: PositiveInt = 20
    rate_email_per_s: PositiveFloat = 20.0
    rate_email_burst: PositiveInt = 20
    rate_whatsapp_per_s: PositiveFloat = 10.0
    rate_whatsapp_burst: PositiveInt = 10
    # Adaptation to throttling: above this share over the window the rate drops
    # below the accepted one (never under the floor), back RATE_RECOVERY_S later.
    rate_min_per_s: PositiveFloat = 1.0
    rate_throttle_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.1
    rate_window_s: Annotated[float, Field(gt=0, le=300)] = 3.0
    rate_recovery_s: Annotated[float, Field(gt=0, le=3600)] = 25.0
    rate_acquire_timeout_s: Annotated[float, Field(ge=0)] = 5.0
    dst_cap_count: NonNegativeInt = 0
    dst_cap_window_s: PositiveInt = 60

    # --- Circuit breaker (worker/breaker.py) -------------------------------
    breaker_failure_threshold: PositiveInt = 5
    breaker_open_s: PositiveFloat = 30.0  # doubles after each failed probe, up to the max
    breaker_max_open_s: PositiveFloat = 600.0
    breaker_probes: PositiveInt = 1
    breaker_probe_lease_s: PositiveFloat = 60.0  # a dead probe frees its slot after it
    breaker_successes_to_close: PositiveInt = 1

    # --- Logging -----------------------------------------------------------
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = True

    # Checks beyond each field's type (config/checks.py).
    _check_redis_url = field_validator("redis_url")(checks.check_redis_url)
    _check_sentinels = field_validator("redis_sentinels")(checks.check_sentinels)
    _check_http_url = field_validator(
        "connectus_base_url", "connectus_v1_base_url", "connectus_whatsapp_qr_url"
    )(checks.check_http_url)
    _check_timezone = field_validator("default_timezone")(checks.check_timezone)
    _check_region = field_validator("default_region")(checks.check_region)
    _check_rate_floor = field_validator("rate_min_per_s")(checks.check_rate_floor)
    _check_not_below = field_validator(*checks.LOWER_BOUND)(checks.check_not_below)
    _check_user = field_validator("connectus_api_user")(checks.check_user)
    # From CONNECTUS_<NAME>_* by load_settings (not fields: the names are the accounts').
    _named_accounts: dict[str, acc.Account] = PrivateAttr(default_factory=dict)

    @field_validator("connectus_accounts")
    @classmethod
    def _check_accounts(cls, value: str) -> str:
        return ",".join(acc.parse_account_names(value, frozenset(cls.model_fields)))

    @field_validator("tenant_accounts")
    @classmethod
    def _check_tenant_accounts(cls, value: str | None, info: Any) -> str | None:
        if value is not None and "connectus_accounts" in info.data:
            acc.parse_tenant_accounts(value, tuple(info.data["connectus_accounts"].split(",")))
        return value

    _check_intake_tokens = field_validator("intake_tokens")(checks.check_intake_tokens)
    _check_intake_tenants = field_validator("intake_tenants")(checks.check_intake_tenants)
    _check_webhook_secret = field_validator("webhook_secret")(checks.check_webhook_secret)
    _check_basic_password = field_validator("webhook_basic_password")(checks.check_basic_password)
    _check_opt_out_keywords = field_validator("opt_out_keywords")(checks.check_opt_out_keywords)
    _check_opt_in_keywords = field_validator("opt_in_keywords")(checks.check_opt_in_keywords)
    _check_content_hash_key = field_validator("content_hash_key")(checks.check_content_hash_key)
    _check_console_users = field_validator("console_users")(checks.check_console_users)
    _check_console_secret = field_validator("console_secret_key")(checks.check_console_secret)

    @property
    def content_key(self) -> bytes:
        """The HMAC key of kept content digests (a secret): ``CONTENT_HASH_KEY``, else the
        published development key (a production process refuses to start without one)."""
        if self.content_hash_key is not None:
            return self.content_hash_key.get_secret_value().encode("utf-8")
        return checks.DEV_CONTENT_HASH_KEY.encode("utf-8")

    @property
    def queues(self) -> tuple[str, str, str]:
        """The queue names, most urgent first."""
        return (self.queue_otp, self.queue_transactional, self.queue_bulk)

    def require_connectus_credentials(self) -> tuple[str, str]:
        """Check every account's credentials (failing naming the missing variable);
        return the first account's (user, key). Only what calls Connectus needs them."""
        found = [self.account(name).credentials() for name in self.account_names]
        return found[0]

    @property
    def account_names(self) -> tuple[str, ...]:
        """The accounts' names, in order (the first is the fallback account)."""
        return tuple(self.connectus_accounts.split(","))

    def account(self, name: str) -> acc.Account:
        """The account ``name`` (``KeyError`` if it is not one of :attr:`account_names`)."""
        if name not in self.account_names:
            raise KeyError(name)
        if name == acc.DEFAULT_ACCOUNT:
            return acc.default_account(self)
        found = self._named_accounts.get(name)
        return found if found is not None else acc.named_accounts(self, (name,), {})[name]

    def tenant_account_names(self, tenant: str) -> tuple[str, ...]:
        """The accounts ``tenant`` may send through, its default first (TENANT_ACCOUNTS;
        a tenant not listed there: every account, the first one its default)."""
        own = acc.parse_tenant_accounts(self.tenant_accounts or "", self.account_names)
        return own.get(tenant, self.account_names)

    def account_for(self, tenant: str, requested: str | None = None) -> str:
        """The account of a job or campaign: ``requested``, else ``tenant``'s default."""
        return requested or self.tenant_account_names(tenant)[0]

    @property
    def intake_token_values(self) -> tuple[str, ...]:
        """Every intake bearer token, of every tenant (plain text: never log them)."""
        return tuple(token for tokens in self.tenant_tokens.values() for token in tokens)

    @property
    def tenant_tokens(self) -> dict[str, tuple[str, ...]]:
        """{tenant: its bearer tokens}: ``INTAKE_TENANTS``'s, and ``INTAKE_TOKENS`` as
        :data:`config.tenants.DEFAULT_TENANT`'s."""
        tenants = self.intake_tenants
        result = parse_tenants(tenants.get_secret_value()) if tenants is not None else {}
        if self.intake_tokens is not None:
            plain = (t.strip() for t in self.intake_tokens.get_secret_value().split(","))
            result[DEFAULT_TENANT] = (*result.get(DEFAULT_TENANT, ()), *plain)
        return result

    @property
    def opt_out_keyword_set(self) -> frozenset[str]:
        """Case-folded (compare with ``text.strip().casefold()``)."""
        return checks.keyword_set(self.opt_out_keywords)

    @property
    def opt_in_keyword_set(self) -> frozenset[str]:
        return checks.keyword_set(self.opt_in_keywords)

    def require_service_settings(self) -> None:
        """Fail naming the variable if ``connectus serve`` lacks what it needs (not in
        the model: workers and the CLI need none of it)."""
        if not self.intake_token_values:
            raise ConfigError(
                "INTAKE_TOKENS", "is required to serve the intake (or INTAKE_TENANTS)"
            )
        acc.require_webhook_credentials(self)
        if self.console_users is not None and self.console_secret_key is None:
            raise ConfigError("CONSOLE_SECRET_KEY", "is required when CONSOLE_USERS is set")


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: str | None = None,
    require_keys: bool | None = None,
    **overrides: Any,
) -> Settings:
    """Read the settings once; :class:`ConfigError` names the first bad variable.

    ``environ`` replaces ``os.environ`` (tests pass a dict); ``env_file`` names an
    optional ``.env`` file; ``overrides`` win over both. ``require_keys`` (default:
    when reading the process's own environment, as every process that starts does)
    refuses production without ``CONTENT_HASH_KEY``.
    """
    try:
        if environ is None:
            settings = Settings(_env_file=env_file, **overrides)
        else:
            known = {name.upper() for name in Settings.model_fields}
            values: dict[str, Any] = {
                key.lower(): value for key, value in environ.items() if key.upper() in known
            }
            values.update(overrides)
            settings = Settings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        reason = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        raise ConfigError(field.upper(), reason) from exc
    # Here, not in the model: tests and tools build Settings(...) with any values,
    # while every process that starts reads its settings through this function.
    settings._named_accounts.update(acc.read_named_accounts(settings, environ, env_file))
    sample = checks.find_sample_secret(settings, settings.run_mode)
    if sample is not None:
        raise ConfigError(sample[0].upper(), sample[1])
    required = require_keys if require_keys is not None else environ is None
    if required and not settings.content_hash_key and settings.run_mode not in checks.SAMPLE_MODES:
        raise ConfigError(
            "CONTENT_HASH_KEY",
            f"is required when RUN_MODE={settings.run_mode} (the key of the content "
            "digests: at least 32 random characters, the same in every process)",
        )
    return settings
