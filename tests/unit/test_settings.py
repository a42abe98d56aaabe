"""Settings: every bad value fails at start-up naming its variable; secrets stay hidden."""

from __future__ import annotations

import pytest

from connectus_worker.config import ConfigError, Settings, checks, load_settings
from connectus_worker.config.checks import sentinel_addresses

BAD = [
    ("REDIS_URL", "http://localhost:6379", "must start with redis://"),
    ("REDIS_URL", "redis://", "has no host"),
    ("REDIS_URL", "redis://127.0.0.1:99999/0", "port that is not a number from 1 to 65535"),
    ("REDIS_URL", "redis://127.0.0.1:port/0", "port that is not a number from 1 to 65535"),
    ("REDIS_URL", "redis://127.0.0.1:0/0", "port that is not a number from 1 to 65535"),
    ("REDIS_URL", "redis://127.0.0.1:6379/zero", "database that is not a number"),
    ("REDIS_SENTINELS", "sentinel-1", "is not host:port"),
    ("REDIS_SENTINELS", "s1:26379,s2:0", "is not host:port"),
    ("REDIS_SENTINELS", ":26379", "is not host:port"),
    ("REDIS_SENTINEL_MASTER", "my master", "pattern"),
    ("REDIS_SENTINEL_PASSWORD", "REPLACE-ME-sentinel-password", "REPLACE-ME placeholder"),
    ("REDIS_PASSWORD", "REPLACE-ME-redis-password", "REPLACE-ME placeholder"),
    ("REDIS_MIN_REPLICAS", "-1", "greater than or equal to 0"),
    ("REDIS_WAIT_TIMEOUT_MS", "0", "greater than 0"),
    ("RUN_MODE", "prod", "'production', 'sandbox' or 'demo'"),
    ("CONNECTUS_ACCOUNTS", "brand_a,brand_a", "named twice"),
    ("CONNECTUS_ACCOUNTS", "Brand-A", "a-z 0-9 _"),
    ("TENANT_ACCOUNTS", "acme:nope", "'nope' is not in CONNECTUS_ACCOUNTS"),
    ("KEY_PREFIX", "has space", "pattern"),
    ("KEY_PREFIX", "{a:b}", "pattern"),  # ':' separates the key namespaces
    ("KEY_PREFIX", "{a}{b}", "pattern"),  # one hash tag at most
    ("KEY_PREFIX", "{}", "pattern"),  # an empty tag hashes the whole key
    ("KEY_PREFIX", "{acme", "pattern"),
    ("KEY_PREFIX", "x" * 33, "at most 32"),
    ("QR_STATUS_INTERVAL_S", "-1", "greater than or equal to 0"),
    ("STATUS_POLL_INTERVAL_S", "0", "greater than 0"),
    ("STATUS_POLL_MAX_AGE_S", "-5", "greater than 0"),
    ("BALANCE_SNAPSHOT_INTERVAL_S", "0", "greater than 0"),
    ("CONNECTUS_API_USER", "  ", "is empty"),
    ("CONNECTUS_BASE_URL", "ftp://x", "http:// or https://"),
    ("CONNECTUS_V1_BASE_URL", "not a url", "http:// or https://"),
    ("CONNECTUS_WHATSAPP_QR_URL", "", "http:// or https://"),
    ("CONNECTUS_CONNECT_TIMEOUT_S", "0", "greater than 0"),
    ("CONNECTUS_READ_TIMEOUT_S", "soon", "valid number"),
    ("CONNECTUS_READ_TIMEOUT_S", "inf", "finite number"),
    ("CONNECTUS_WRITE_TIMEOUT_S", "-1", "greater than 0"),
    ("CONNECTUS_REQUEST_DEADLINE_S", "0", "greater than 0"),
    ("CONNECTUS_REQUEST_DEADLINE_S", "inf", "finite number"),
    ("CONNECTUS_REQUEST_DEADLINE_S", "nan", "finite number"),
    ("CONNECTUS_MAX_RESPONSE_BYTES", "100", "greater than or equal to 1024"),
    ("CONNECTUS_MAX_RESPONSE_BYTES", "1MB", "valid integer"),
    ("CONNECTUS_MAX_LISTING_BYTES", "0", "greater than or equal to 1024"),
    ("CONNECTUS_DEFAULT_SRC_EMAIL", "not-an-address", "pattern"),
    ("CONNECTUS_WHATSAPP_SRC_NUMBER", "+56 9", "pattern"),
    ("RETRY_ATTEMPTS", "0", "greater than 0"),
    ("RETRY_INITIAL_BACKOFF_MS", "x", "valid integer"),
    ("RETRY_MAX_BACKOFF_MS", "0", "greater than 0"),
    ("DURABLE_MAX_RETRIES", "-1", "greater than or equal to 0"),
    ("DURABLE_MIN_BACKOFF_MS", "1.5", "valid integer"),
    ("DURABLE_MAX_BACKOFF_MS", "0", "greater than 0"),
    ("MAX_MESSAGE_AGE_S", "0", "greater than 0"),
    ("OTP_MAX_AGE_S", "-5", "greater than 0"),
    ("LEASE_MARGIN_S", "0", "greater than 0"),
    ("RECONCILE_AFTER_S", "0", "greater than 0"),
    ("RECONCILE_WINDOW_S", "-1", "greater than 0"),
    ("RECONCILE_INTERVAL_S", "x", "valid number"),
    ("RECONCILE_UNDECIDABLE", "ignore", "pattern"),
    ("QUEUE_OTP", "a queue", "pattern"),
    ("QUEUE_TRANSACTIONAL", "", "pattern"),
    ("QUEUE_BULK", "x" * 65, "pattern"),
    ("JOB_TTL_S", "0", "greater than 0"),
    ("CAMPAIGN_TTL_S", "0", "greater than 0"),
    ("CAMPAIGN_MAX_LATENESS_S", "-1", "greater than or equal to 0"),
    ("CAMPAIGN_MAX_PENDING", "999", "greater than or equal to 1000"),
    ("CAMPAIGN_DELIVERY_LEAD_S", "0", "greater than or equal to 1"),
    ("CAMPAIGN_STATUS_POLL_AFTER_S", "0", "greater than 0"),
    ("DEFAULT_TIMEZONE", "Mars/Olympus", "unknown IANA time zone"),
    ("DEFAULT_REGION", "chile", "pattern"),
    ("DEFAULT_REGION", "XX", "not a region known to phonenumbers"),
    ("WORKER_PROCESSES", "0", "greater than 0"),
    ("WORKER_THREADS", "many", "valid integer"),
    ("WORKER_SHUTDOWN_GRACE_S", "-5", "greater than 0"),
    ("BROKER_MAINTENANCE_INTERVAL_S", "0", "greater than 0"),
    ("HOUSEKEEPING_INTERVAL_S", "-0.2", "greater than 0"),
    ("BROKER_HEARTBEAT_TIMEOUT_S", "0", "greater than 0"),
    ("WORKER_METRICS_PORT", "65536", "less than or equal to 65535"),
    ("WORKER_METRICS_PORT", "http", "valid integer"),
    ("WORKER_METRICS_HOST", "0.0.0.0 ", "pattern"),
    ("INTAKE_TOKENS", "ok-token-0123456789,short", "token #2 must be 16-256"),
    ("INTAKE_TENANTS", "acme:ok-token-0123456789,short", "tenant 'acme' token #2 must be 16-256"),
    ("INTAKE_TENANTS", "ok-token-0123456789", "entry #1 must be tenant:token"),
    ("INTAKE_TENANTS", "Acme:ok-token-0123456789", "entry #1: the tenant name must be 1-64"),
    ("INTAKE_TENANTS", "a:ok-token-0123456789;a:ok-token-9876543210", "'a' is named twice"),
    ("INTAKE_TENANTS", "a:ok-token-0123456789;b:ok-token-0123456789", "also a token of tenant"),
    ("INTAKE_TENANTS", "a:ok-token-0123456789,", "'a' has an empty token"),
    ("INTAKE_MAX_BODY_BYTES", "0", "greater than 0"),
    ("INTAKE_IDEMPOTENCY_TTL_S", "0", "greater than 0"),
    ("WEBHOOK_AUTH", "hmac", "'token' or 'basic'"),
    ("WEBHOOK_SECRET", "has space in it, long enough", "must be 16-256 characters"),
    ("WEBHOOK_BASIC_USER", "user:name", "pattern"),
    ("WEBHOOK_BASIC_PASSWORD", "short", "must be 12-256 characters"),
    ("WEBHOOK_MAX_BODY_BYTES", "2000000", "less than or equal to 1048576"),
    ("OPT_OUT_KEYWORDS", "STOP,,BAJA", "non-empty words"),
    ("OPT_IN_KEYWORDS", "ALTA,,START", "non-empty words"),
    ("OPT_IN_KEYWORDS", "ALTA,stop", "stop is also in OPT_OUT_KEYWORDS"),
    ("EVENTS_STREAM_MAXLEN", "10", "greater than or equal to 1000"),
    ("RATE_SMS_PER_S", "0", "greater than 0"),
    ("RATE_SMS_BURST", "0", "greater than 0"),
    ("RATE_OTP_PER_S", "fast", "valid number"),
    ("RATE_OTP_BURST", "2.5", "valid integer"),
    ("RATE_EMAIL_PER_S", "-1", "greater than 0"),
    ("RATE_EMAIL_BURST", "-3", "greater than 0"),
    ("RATE_WHATSAPP_PER_S", "0", "greater than 0"),
    ("RATE_WHATSAPP_BURST", "x", "valid integer"),
    ("RATE_MIN_PER_S", "0", "greater than 0"),
    ("RATE_MIN_PER_S", "1000", "must not exceed RATE_SMS_PER_S"),
    ("RATE_THROTTLE_THRESHOLD", "1", "less than 1"),
    ("RATE_THROTTLE_THRESHOLD", "0", "greater than 0"),
    ("RATE_WINDOW_S", "0", "greater than 0"),
    ("RATE_RECOVERY_S", "-5", "greater than 0"),
    ("RATE_ACQUIRE_TIMEOUT_S", "-1", "greater than or equal to 0"),
    ("DST_CAP_COUNT", "-1", "greater than or equal to 0"),
    ("DST_CAP_WINDOW_S", "0", "greater than 0"),
    ("BREAKER_FAILURE_THRESHOLD", "0", "greater than 0"),
    ("BREAKER_OPEN_S", "0", "greater than 0"),
    ("BREAKER_MAX_OPEN_S", "1", "must be at least BREAKER_OPEN_S"),
    ("BREAKER_PROBES", "0", "greater than 0"),
    ("BREAKER_PROBE_LEASE_S", "0", "greater than 0"),
    ("BREAKER_SUCCESSES_TO_CLOSE", "0", "greater than 0"),
    ("LOG_LEVEL", "LOUD", "pattern"),
    ("LOG_JSON", "maybe", "valid boolean"),
    ("METRICS_CAMPAIGN_LABELS", "sometimes", "valid boolean"),
    ("CONSOLE_USERS", "ana:admin", "must be name:role:hash"),
    ("CONSOLE_SECRET_KEY", "short", "at least 32 characters"),
    ("CONSOLE_SESSION_TTL_S", "10", "greater than or equal to 60"),
    ("CONTENT_HASH_KEY", "short-key", "32-1024 characters"),
    ("HTTP_BODY_TIMEOUT_S", "0", "greater than 0"),
]


@pytest.mark.parametrize(
    ("variable", "value", "reason"), BAD, ids=[f"{v}={x!r}" for v, x, _ in BAD]
)
def test_bad_setting_names_the_variable(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({variable: value})
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("environ", "variable", "other"),
    [({"RETRY_INITIAL_BACKOFF_MS": "900", "RETRY_MAX_BACKOFF_MS": "100"}, "RETRY_MAX_BACKOFF_MS", "RETRY_INITIAL_BACKOFF_MS"),
     ({"DURABLE_MIN_BACKOFF_MS": "9000", "DURABLE_MAX_BACKOFF_MS": "1000"}, "DURABLE_MAX_BACKOFF_MS", "DURABLE_MIN_BACKOFF_MS")],
)  # fmt: skip
def test_inconsistent_backoffs_name_both_variables(
    environ: dict[str, str], variable: str, other: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ)
    assert info.value.variable == variable and other in info.value.reason


@pytest.mark.parametrize("prefix", ["cw", "{acme}", "{acme}-x", "x.{t1}", "{a_b-c.d}"])
def test_key_prefix_may_carry_one_hash_tag(prefix: str) -> None:
    assert load_settings({"KEY_PREFIX": prefix}).key_prefix == prefix


def test_sentinel_addresses_are_read_as_host_and_port_pairs() -> None:
    settings = load_settings({"REDIS_SENTINELS": " s1:26379, [::1]:26380 ,"}, require_keys=False)
    assert sentinel_addresses(settings.redis_sentinels) == [("s1", 26379), ("::1", 26380)]
    assert sentinel_addresses(load_settings({}, require_keys=False).redis_sentinels) == []


def test_every_setting_has_a_bad_value_test() -> None:
    tested = {variable for variable, _, _ in BAD}
    untested = {name.upper() for name in Settings.model_fields} - tested - {"CONNECTUS_API_KEY"}
    assert untested == set()


def test_production_needs_a_content_hash_key_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite's processes get a key from the environment (tests/conftest.py).
    monkeypatch.delenv("CONTENT_HASH_KEY", raising=False)
    # A process reads its own environment (require_keys defaults on there).
    with pytest.raises(ConfigError) as info:
        load_settings({}, require_keys=True)
    assert info.value.variable == "CONTENT_HASH_KEY" and "RUN_MODE=production" in info.value.reason
    key = "k" * 40
    settings = load_settings({"CONTENT_HASH_KEY": key}, require_keys=True)
    assert settings.content_key == key.encode()
    # Never in a repr or a log line of the settings.
    assert key not in repr(settings) and key not in str(settings.model_dump())
    # sandbox / demo: the published development key.
    sandbox = load_settings({"RUN_MODE": "sandbox"}, require_keys=True)
    assert sandbox.content_key == checks.DEV_CONTENT_HASH_KEY.encode()


def test_the_development_content_key_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONTENT_HASH_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings({"CONTENT_HASH_KEY": checks.DEV_CONTENT_HASH_KEY})
    assert info.value.variable == "CONTENT_HASH_KEY"
    assert checks.DEV_CONTENT_HASH_KEY not in str(info.value)
    demo = load_settings({"CONTENT_HASH_KEY": checks.DEV_CONTENT_HASH_KEY, "RUN_MODE": "demo"})
    assert demo.content_key == checks.DEV_CONTENT_HASH_KEY.encode()


def test_a_process_started_without_a_key_exits_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONTENT_HASH_KEY", raising=False)
    monkeypatch.delenv("RUN_MODE", raising=False)
    with pytest.raises(ConfigError, match=r"^CONTENT_HASH_KEY: is required"):
        load_settings()


def test_missing_credentials_are_named_when_needed() -> None:
    settings = load_settings({})
    with pytest.raises(ConfigError, match="CONNECTUS_API_USER: is required"):
        settings.require_connectus_credentials()
    with pytest.raises(ConfigError, match="CONNECTUS_API_KEY: is required"):
        load_settings({"CONNECTUS_API_USER": "acct"}).require_connectus_credentials()


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings(
        {
            "CONNECTUS_API_USER": "acct",
            "CONNECTUS_API_KEY": "k-123-secret",
            "REDIS_URL": "rediss://:hunter2@redis.example:6380/0",
        }
    )
    assert settings.require_connectus_credentials() == ("acct", "k-123-secret")
    for text in (repr(settings), str(settings)):
        assert "k-123-secret" not in text and "hunter2" not in text


def test_settings_are_frozen_and_read_from_the_mapping_given() -> None:
    settings = load_settings({"WORKER_THREADS": "32", "UNRELATED": "x"})
    assert settings.worker_threads == 32
    with pytest.raises(ValueError, match="frozen"):
        settings.worker_threads = 1  # type: ignore[misc]


FLOAT_SETTINGS = sorted(
    name.upper() for name, field in Settings.model_fields.items() if field.annotation is float
)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1e999"])
@pytest.mark.parametrize("variable", FLOAT_SETTINGS)
def test_non_finite_floats_are_refused_everywhere(variable: str, value: str) -> None:
    # issue 21: CONNECTUS_READ_TIMEOUT_S=inf started, then the children crash-looped.
    with pytest.raises(ConfigError) as info:
        load_settings({variable: value})
    assert info.value.variable == variable
    assert "finite" in info.value.reason


def test_float_settings_are_found() -> None:
    # Guards the parametrisation above against an empty list.
    assert {"CONNECTUS_READ_TIMEOUT_S", "RATE_SMS_PER_S", "RATE_THROTTLE_THRESHOLD"} <= set(
        FLOAT_SETTINGS
    )


def test_redis_url_reasons_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"REDIS_URL": "redis://:hunter2@127.0.0.1:99999/0"})
    assert "hunter2" not in str(info.value)


def test_a_known_region_and_a_unix_socket_url_are_accepted() -> None:
    settings = load_settings({"DEFAULT_REGION": "MX", "REDIS_URL": "unix:///run/redis.sock"})
    assert (settings.default_region, settings.redis_url) == ("MX", "unix:///run/redis.sock")


# --- published sample secrets (issue 21, Medium 5) ----------------------------

SAMPLES = [
    ("CONNECTUS_API_KEY", "sandbox-key", "published sample secret"),
    ("INTAKE_TOKENS", "a-real-token-0123456789,sandbox-intake-token", "published sample secret"),
    ("INTAKE_TOKENS", "REPLACE-ME-intake-token-1", "REPLACE-ME placeholder"),
    (
        "INTAKE_TENANTS",
        "acme:a-real-token-0123456789;demo:sandbox-intake-token",
        "published sample secret",
    ),
    ("INTAKE_TENANTS", "acme:SANDBOX-INTAKE-TOKEN", "published sample secret"),
    ("INTAKE_TENANTS", "acme:REPLACE-ME-intake-token-1", "REPLACE-ME placeholder"),
    ("WEBHOOK_SECRET", "Sandbox-Webhook-Secret", "published sample secret"),
    ("WEBHOOK_SECRET", "REPLACE-ME-webhook-secret", "REPLACE-ME placeholder"),
    ("WEBHOOK_BASIC_PASSWORD", "REPLACE-ME-password", "REPLACE-ME placeholder"),
    ("CONNECTUS_API_USER", "REPLACE-ME-connectus-user", "REPLACE-ME placeholder"),
    ("REDIS_URL", "redis://:REPLACE-ME-redis-password@redis:6379/0", "REPLACE-ME placeholder"),
]


@pytest.mark.parametrize(("variable", "value", "reason"), SAMPLES)
def test_sample_secrets_are_refused_in_production(variable: str, value: str, reason: str) -> None:
    for environ in ({variable: value}, {variable: value, "RUN_MODE": "production"}):
        with pytest.raises(ConfigError) as info:
            load_settings(environ)
        assert info.value.variable == variable
        assert reason in info.value.reason
        assert value.split(",")[-1].lower() not in str(info.value).lower()


@pytest.mark.parametrize("mode", ["sandbox", "demo"])
@pytest.mark.parametrize(("variable", "value", "reason"), SAMPLES)
def test_sample_secrets_are_allowed_in_sandbox_and_demo_modes(
    variable: str, value: str, reason: str, mode: str
) -> None:
    settings = load_settings({variable: value, "RUN_MODE": mode})
    assert settings.run_mode == mode


def test_real_looking_secrets_pass_in_production() -> None:
    settings = load_settings(
        {
            "CONNECTUS_API_KEY": "k-8f3a9c1e",
            "INTAKE_TOKENS": "tok-0123456789abcdef",
            "WEBHOOK_SECRET": "hook-0123456789abcdef",
        }
    )
    assert settings.run_mode == "production"
    assert settings.intake_token_values == ("tok-0123456789abcdef",)


# --- tenants (issue 21, Medium 3) ---------------------------------------------


def test_intake_tenants_map_each_token_to_its_tenant_and_intake_tokens_are_default() -> None:
    settings = load_settings(
        {
            "INTAKE_TENANTS": " acme : tok-acme-0123456789 , tok-acme-9876543210 ;"
            "globex:tok-globex-0123456789;",
            "INTAKE_TOKENS": "tok-old-0123456789abc",
        }
    )
    assert settings.tenant_tokens == {
        "acme": ("tok-acme-0123456789", "tok-acme-9876543210"),
        "globex": ("tok-globex-0123456789",),
        "default": ("tok-old-0123456789abc",),
    }
    assert set(settings.intake_token_values) == {
        "tok-acme-0123456789", "tok-acme-9876543210", "tok-globex-0123456789",
        "tok-old-0123456789abc",
    }  # fmt: skip
    assert "tok-acme" not in repr(settings)


def test_a_token_in_intake_tokens_and_intake_tenants_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {"INTAKE_TOKENS": "tok-same-0123456789", "INTAKE_TENANTS": "a:tok-same-0123456789"}
        )
    assert info.value.variable == "INTAKE_TENANTS"
    assert "also a token of INTAKE_TOKENS" in info.value.reason
    assert "tok-same" not in str(info.value)


def test_the_service_starts_with_intake_tenants_alone() -> None:
    settings = load_settings(
        {"INTAKE_TENANTS": "acme:tok-acme-0123456789", "WEBHOOK_SECRET": "hook-0123456789abcdef"}
    )
    settings.require_service_settings()
    with pytest.raises(ConfigError) as info:
        load_settings({"WEBHOOK_SECRET": "hook-0123456789abcdef"}).require_service_settings()
    assert info.value.variable == "INTAKE_TOKENS" and "INTAKE_TENANTS" in info.value.reason


def test_campaign_labels_on_metrics_are_off_by_default() -> None:
    assert load_settings({}).metrics_campaign_labels is False
    assert load_settings({"METRICS_CAMPAIGN_LABELS": "true"}).metrics_campaign_labels is True
