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

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectus_worker.config import accounts as acc
from connectus_worker.config import checks
from connectus_worker.config.tenants import tenant_tokens

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
# Seconds that must be a real number: "inf" and "nan" are refused.
FiniteSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


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
        # inf/nan are floats to Python but no setting means them: a timeout of
        # inf crash-loops the workers (OverflowError), so refuse them everywhere.
        allow_inf_nan=False,
    )

    # --- Mode --------------------------------------------------------------
    # production: the secrets published in this repository (sandbox defaults,
    # REPLACE-ME placeholders) are refused at start-up. sandbox / demo: a local
    # stack against the sandbox (docker-compose.yml, `connectus demo`, tests).
    run_mode: Literal["production", "sandbox", "demo"] = "production"

    # --- Content digests (domain/hashing.py) -----------------------------------
    # Key of the HMAC-SHA256 that every kept digest of content is made with (an
    # OTP record's content_hmac, idempotency fingerprints, provider-id lookup
    # entries): without it a digest of a 6-digit code is reversed in a second.
    # Required in production (load_settings), the same in every process of a
    # deployment, >= 32 characters; sandbox/demo fall back to DEV_CONTENT_HASH_KEY.
    content_hash_key: SecretStr | None = None

    # --- Redis -------------------------------------------------------------
    # repr=False: the URL may carry a password.
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", repr=False)
    # At most one Redis Cluster hash tag ("{acme}", "{acme}-x"): every key of the
    # deployment then hashes on it, one slot (docs/scaling.md). Never ':' (it
    # separates the key namespaces, ledger/keys.py) nor another brace.
    key_prefix: str = Field(
        default="cw",
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_.-]*(\{[A-Za-z0-9_.-]+\})?[A-Za-z0-9_.-]*$",
    )
    # Sentinel (redis.py): host:port,...; set, the primary is the one they name
    # REDIS_SENTINEL_MASTER (REDIS_URL then gives only the db and TLS).
    redis_sentinels: str = ""
    redis_sentinel_master: str = Field(default="mymaster", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    redis_sentinel_password: SecretStr | None = None
    redis_password: SecretStr | None = None  # of the data nodes (else REDIS_URL's)
    # A claim (before its send) and an enqueue (before its job id is returned) are
    # confirmed by this many replicas (WAIT), within the timeout in ms; 0: by the
    # local AOF (WAITAOF, Redis >= 7.2) where the server has it (durability.py).
    redis_min_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    redis_wait_timeout_ms: Annotated[int, Field(gt=0, le=60_000)] = 1000

    # --- Connectus accounts and endpoints ----------------------------------
    # The accounts, in order (config/accounts.py): "default" reads the variables
    # below, any other <name> CONNECTUS_<NAME>_API_USER, _API_KEY... The first is
    # the account of a job whose request and tenant (TENANT_ACCOUNTS) name none.
    connectus_accounts: str = acc.DEFAULT_ACCOUNT
    # Each tenant's accounts: tenant:account|account,tenant:account. The first is
    # its default; it may use only those. A tenant not listed: any, the first by default.
    tenant_accounts: str | None = None
    connectus_api_user: str | None = None
    connectus_api_key: SecretStr | None = None
    connectus_base_url: str = "https://plataforma.connectus.la"
    connectus_v1_base_url: str = "https://api.connectus.cl"
    connectus_whatsapp_qr_url: str = "https://whatsappqr.connectus.la"
    connectus_connect_timeout_s: PositiveFloat = 3.0
    connectus_read_timeout_s: PositiveFloat = 10.0
    # Between bytes of a request; counted in the send lease (worker.app.lease_ms).
    connectus_write_timeout_s: PositiveFloat = 5.0
    # A whole request, in s: no single timeout exceeds it, and a server that
    # trickles its answer is cut off once it passes (ResponseTimeout).
    connectus_request_deadline_s: FiniteSeconds = 15.0
    # Largest answer read, in bytes (decoded): a send answer or a single
    # lookup, and a listing (date_report, delivery_info...). A larger answer
    # is refused while it streams (MalformedResponse, response_too_large).
    connectus_max_response_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    connectus_max_listing_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
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
    # A job not sent this long after it was due is dead-lettered as Expired (s);
    # an OTP (SMS or e-mail) by OTP_MAX_AGE_S, a job with its own max_age_s /
    # expires_at by that (domain.expiry).
    max_message_age_s: PositiveInt = 86_400
    otp_max_age_s: PositiveInt = 300
    # Added (s) to the send lease on top of the worst-case in-process attempts
    # (worker.app.lease_ms): a live but slow worker must never lose its lease
    # mid-send. Smaller settles a killed worker's sends sooner (tests use 1).
    lease_margin_s: PositiveFloat = 30.0

    # --- Reconciliation of ambiguous sends ---------------------------------
    # Look an unknown job up at Connectus after RECONCILE_AFTER_S; if it is
    # still not found RECONCILE_WINDOW_S after it became unknown, send again.
    reconcile_after_s: PositiveFloat = 30.0
    reconcile_window_s: PositiveFloat = 300.0
    reconcile_interval_s: PositiveFloat = 5.0
    # E-mail has no listing to look a message up in: hold it for an operator
    # (review), send it again (resend) or give it up (drop).
    reconcile_undecidable: str = Field(default="review", pattern=r"^(review|resend|drop)$")

    # --- Queues ------------------------------------------------------------
    queue_otp: str = Field(default="otp", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    queue_transactional: str = Field(default="transactional", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    queue_bulk: str = Field(default="bulk", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    # --- Jobs --------------------------------------------------------------
    job_ttl_s: PositiveInt = 7 * 86_400
    default_timezone: str = "America/Santiago"
    default_region: str = Field(default="CL", pattern=r"^[A-Z]{2}$")

    # --- Campaigns -----------------------------------------------------------
    # How long a campaign's record and stored recipient list live, in s.
    campaign_ttl_s: PositiveInt = 30 * 86_400
    # A campaign that could not start within this many s of deliver_at waits
    # for an explicit resume instead of firing late (0: no limit).
    campaign_max_lateness_s: Annotated[int, Field(ge=0)] = 6 * 3600
    # Most recipients of one campaign released (jobs created) but not yet
    # finished; the next chunk is released below it. Bounds Redis memory and
    # how much a pause or cancel has to stop.
    campaign_max_pending: Annotated[int, Field(ge=1000)] = 20_000
    # A v3 campaign chunk's Connectus delivery executes this many s after the chunk
    # is released (worker.campaign_deliveries): its first messages wait at most
    # that long at Connectus; a message sent later goes without the delivery.
    campaign_delivery_lead_s: Annotated[int, Field(ge=1, le=3600)] = 5
    # A sent campaign message with no delivery status after this many s is
    # looked up at Connectus (polling backs up the status webhook).
    campaign_status_poll_after_s: PositiveInt = 600
    # How often (s) one elected worker process asks the WhatsApp QR API's
    # GET /status whether the session is paired: not connected pauses every QR
    # send (breaker scope qr_session), connected ends that pause. 0 = never
    # (the pause then opens only when a QR send is refused, and ends by probes).
    qr_status_interval_s: Annotated[float, Field(ge=0)] = 30.0
    # E-mail and WhatsApp jobs (single and campaign) are looked up at Connectus
    # (GET /email/:id, GET /whatsapp/status) at most once per this many s each,
    # until a final status or until this many s after sending (worker.channel_status).
    status_poll_interval_s: PositiveInt = 60
    status_poll_max_age_s: PositiveInt = 2 * 86_400
    # The workers publish Connectus balances in Redis this often (s); the HTTP
    # service's campaign preflight reads them, ignoring a snapshot older than
    # 3 intervals (worker.balance_snapshot).
    balance_snapshot_interval_s: PositiveInt = 60

    # --- Worker processes --------------------------------------------------
    worker_processes: PositiveInt = 2
    worker_threads: PositiveInt = 32
    worker_shutdown_grace_s: PositiveFloat = 30.0
    # How often the broker maintenance runs (re-queues messages of dead
    # workers); Dramatiq's default of 0.1% of calls recovers in ~10 min.
    broker_maintenance_interval_s: PositiveFloat = 15.0
    # The housekeeper's tick: due scheduled sends and durable retries are
    # promoted, campaigns start, release chunks and finish within one tick.
    # An idle tick costs each process about 3 Redis commands.
    housekeeping_interval_s: PositiveFloat = 0.2
    broker_heartbeat_timeout_s: PositiveFloat = 60.0
    # The supervisor's /metrics, /healthz, /readyz; port 0 disables it.
    # Loopback by default (a laptop); containers set 0.0.0.0.
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9191
    worker_metrics_host: str = Field(default="127.0.0.1", pattern=r"^[A-Za-z0-9.:_-]{1,253}$")

    # --- HTTP service (``connectus serve``) ----------------------------------
    # Bearer tokens of the intake, comma-separated; each >= 16 characters.
    intake_tokens: SecretStr | None = None
    # Tenants and their bearer tokens: name:token,token;name:token (config/tenants.py).
    # INTAKE_TOKENS are the tokens of the tenant "default".
    intake_tenants: SecretStr | None = None
    # Largest accepted request body, in bytes (256 KiB); bigger is a 413.
    intake_max_body_bytes: Annotated[int, Field(gt=0, le=16 * 1024 * 1024)] = 256 * 1024
    # Longest time a request body may take to arrive, in s; slower is a 408
    # (a client that announces a body and stops sending must not hold a slot).
    http_body_timeout_s: Annotated[float, Field(gt=0, le=600)] = 15.0
    # How long a stored Idempotency-Key response is replayed, in s (Stripe: 24 h).
    intake_idempotency_ttl_s: PositiveInt = 86_400
    # How Connectus authenticates to our webhooks: a secret in the URL or Basic auth.
    webhook_auth: Literal["token", "basic"] = "token"
    webhook_secret: SecretStr | None = None
    webhook_basic_user: str | None = Field(default=None, pattern=r"^[^:\s]{1,64}$")
    webhook_basic_password: SecretStr | None = None
    # Largest accepted webhook body, in bytes (64 KiB).
    webhook_max_body_bytes: Annotated[int, Field(gt=0, le=1024 * 1024)] = 64 * 1024
    # Incoming SMS texts that opt the sender out of marketing; comma-separated.
    opt_out_keywords: str = "STOP,BAJA,SALIR"
    # Incoming SMS texts that opt the sender back in; none may also be an opt-out word.
    opt_in_keywords: str = "ALTA,START"
    # Approximate cap on the event stream's length, in entries (XADD MAXLEN ~).
    events_stream_maxlen: Annotated[int, Field(ge=1_000)] = 100_000
    # /metrics is unauthenticated: campaign ids and names are exported there only
    # when this is true (a scrape endpoint reachable by the cluster alone).
    metrics_campaign_labels: bool = False

    # --- Operator console (``/ui``, service/console; docs/console.md) ----------
    # Operators: name:role:hash;name:role:hash, role admin or read-only, hash from
    # `connectus console-password` (PBKDF2-SHA256). Unset: no console is served.
    console_users: SecretStr | None = None
    # Signs the console's session cookies (>= 32 characters); required with CONSOLE_USERS.
    console_secret_key: SecretStr | None = None
    # A console login lasts this many s.
    console_session_ttl_s: Annotated[int, Field(ge=60, le=7 * 86_400)] = 8 * 3600

    # --- Rate limits (worker/ratelimit.py) -----------------------------------
    # One token bucket per account and product, shared by every pod through
    # Redis: rate in tokens (sends) per second, burst in tokens. OTP has its
    # own bucket so that a campaign can never starve it.
    rate_sms_per_s: PositiveFloat = 50.0
    rate_sms_burst: PositiveInt = 50
    rate_otp_per_s: PositiveFloat = 20.0
    rate_otp_burst: PositiveInt = 20
    rate_email_per_s: PositiveFloat = 20.0
    rate_email_burst: PositiveInt = 20
    rate_whatsapp_per_s: PositiveFloat = 10.0
    rate_whatsapp_burst: PositiveInt = 10
    # Adaptation to HTTP 429 / ESME_RTHROTTLED (docs/ratelimit.md): throttles
    # above this share of the requests over the window (s) are the provider's
    # limit, not noise; the rate is then set just below the accepted rate
    # measured (never below the floor, tokens/s) and is back at the configured
    # rate RATE_RECOVERY_S (s) later unless throttled again.
    rate_min_per_s: PositiveFloat = 1.0
    rate_throttle_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.1
    rate_window_s: Annotated[float, Field(gt=0, le=300)] = 3.0
    rate_recovery_s: Annotated[float, Field(gt=0, le=3600)] = 25.0
    # How long a send may wait for a token (s) before it becomes a delayed retry.
    rate_acquire_timeout_s: Annotated[float, Field(ge=0)] = 5.0
    # At most DST_CAP_COUNT sends to one destination per DST_CAP_WINDOW_S
    # (per account and product); DST_CAP_COUNT=0 turns the cap off.
    dst_cap_count: NonNegativeInt = 0  # 0 = no cap (opt-in: e.g. against SMS pumping)
    dst_cap_window_s: PositiveInt = 60

    # --- Circuit breaker (worker/breaker.py) -------------------------------
    # Scoped pauses (worker/breaker_scopes.py): an API host pauses after this
    # many consecutive platform failures of that host (5xx, connect failures,
    # timeouts) across all pods; the account, a product or a balance pauses
    # at once on the error that is about it. Each scope uses the values below.
    breaker_failure_threshold: PositiveInt = 5
    # First cool-down (s); doubles after each failed probe, up to the max.
    breaker_open_s: PositiveFloat = 30.0
    breaker_max_open_s: PositiveFloat = 600.0
    # Half-open: probe sends admitted at once across all pods, how long a
    # probe's lease lasts (s; a probe whose worker died frees its slot after
    # it) and how many probe successes close the breaker.
    breaker_probes: PositiveInt = 1
    breaker_probe_lease_s: PositiveFloat = 60.0
    breaker_successes_to_close: PositiveInt = 1

    # --- Logging -----------------------------------------------------------
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = True

    # Checks beyond each field's type (config/checks.py), in the order they run.
    _check_redis_url = field_validator("redis_url")(checks.check_redis_url)
    _check_sentinels = field_validator("redis_sentinels")(checks.check_sentinels)
    _check_http_url = field_validator(
        "connectus_base_url", "connectus_v1_base_url", "connectus_whatsapp_qr_url"
    )(checks.check_http_url)
    _check_timezone = field_validator("default_timezone")(checks.check_timezone)
    _check_region = field_validator("default_region")(checks.check_region)
    _check_rate_floor = field_validator("rate_min_per_s")(checks.check_rate_floor)
    _check_max_open = field_validator("breaker_max_open_s")(checks.check_max_open)
    _check_backoff_order = field_validator("retry_max_backoff_ms", "durable_max_backoff_ms")(
        checks.check_backoff_order
    )
    _check_user = field_validator("connectus_api_user")(checks.check_user)
    # Built by load_settings from CONNECTUS_<NAME>_* (not fields: their names are the
    # accounts'); a Settings(...) built in-process gets accounts without credentials.
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
        """The HMAC key of kept content digests (bytes; a secret: never log it).

        ``CONTENT_HASH_KEY``, else the published development key: allowed in
        sandbox/demo, and for settings built in-process by tests and tools;
        a production process refuses to start without a key of its own
        (:func:`load_settings`).
        """
        if self.content_hash_key is not None:
            return self.content_hash_key.get_secret_value().encode("utf-8")
        return checks.DEV_CONTENT_HASH_KEY.encode("utf-8")

    def require_content_key(self) -> None:
        """Fail naming CONTENT_HASH_KEY if production runs without a key of its own."""
        if self.content_hash_key is None and self.run_mode not in checks.SAMPLE_MODES:
            raise ConfigError(
                "CONTENT_HASH_KEY",
                f"is required when RUN_MODE={self.run_mode} (the key of the content "
                "digests: at least 32 random characters, the same in every process)",
            )

    @property
    def queues(self) -> tuple[str, str, str]:
        """The queue names, most urgent first."""
        return (self.queue_otp, self.queue_transactional, self.queue_bulk)

    def require_connectus_credentials(self) -> tuple[str, str]:
        """Check every account's credentials; return the first account's (user, key).

        Fails naming the missing variable. Producers never need the credentials;
        workers and the CLI commands that call Connectus do, so they check at start-up.
        """
        try:
            found = [self.account(name).credentials() for name in self.account_names]
        except ValueError as exc:
            raise _config_error(exc) from None
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
        """{tenant: its bearer tokens} (:func:`config.tenants.tenant_tokens`)."""
        return tenant_tokens(self.intake_tenants, self.intake_tokens)

    @property
    def opt_out_keyword_set(self) -> frozenset[str]:
        """Opt-out keywords, case-folded (compare with ``text.strip().casefold()``)."""
        return checks.keyword_set(self.opt_out_keywords)

    @property
    def opt_in_keyword_set(self) -> frozenset[str]:
        """Opt-in keywords, case-folded, like :attr:`opt_out_keyword_set`."""
        return checks.keyword_set(self.opt_in_keywords)

    def require_service_settings(self) -> None:
        """Fail naming the variable if ``connectus serve`` lacks what it needs.

        Checked when the service starts, not in the model: workers and the CLI
        share these settings and need none of them.
        """
        if not self.intake_token_values:
            raise ConfigError(
                "INTAKE_TOKENS", "is required to serve the intake (or INTAKE_TENANTS)"
            )
        # Each account's webhook routes are opened by its own credentials (default: WEBHOOK_*).
        missing = acc.missing_webhook_credential(self)
        if missing is not None:
            raise ConfigError(missing, f"is required when WEBHOOK_AUTH={self.webhook_auth}")
        if self.console_users is not None and self.console_secret_key is None:
            raise ConfigError("CONSOLE_SECRET_KEY", "is required when CONSOLE_USERS is set")


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: str | None = None,
    require_keys: bool | None = None,
    **overrides: Any,
) -> Settings:
    """Read the settings once.

    ``environ`` replaces ``os.environ`` (tests pass a dict); ``env_file``
    names an optional ``.env`` file; ``overrides`` win over both.
    ``require_keys`` (default: when reading the process's own environment, as
    every process that starts does) refuses production without
    ``CONTENT_HASH_KEY``. Raises :class:`ConfigError` naming the first bad variable.
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
    try:  # CONNECTUS_<NAME>_* of every named account (config/accounts.py)
        settings._named_accounts.update(acc.read_named_accounts(settings, environ, env_file))
    except ValueError as exc:
        raise _config_error(exc) from exc
    sample = checks.find_sample_secret(settings, settings.run_mode)
    if sample is not None:
        raise ConfigError(sample[0].upper(), sample[1])
    if require_keys if require_keys is not None else environ is None:
        settings.require_content_key()
    return settings


def _config_error(exc: ValueError) -> ConfigError:
    """``ValueError("VARIABLE: reason")`` of config/accounts.py as a ConfigError."""
    variable, _, reason = str(exc).partition(": ")
    return ConfigError(variable, reason)
