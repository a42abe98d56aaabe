"""``connectus worker`` and ``connectus serve`` read the OTEL_* variables at start-up:
a bad one stops them with exit 78 naming it, before any message is taken."""

from __future__ import annotations

import os

import pytest

from devtools.embedded_redis import free_port
from tests.support.cli import run


@pytest.fixture
def env(redis_url: str, redis_prefix: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**clean, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix, "RUN_MODE": "sandbox",
            "CONNECTUS_API_USER": "sandbox", "CONNECTUS_API_KEY": "sandbox-key",
            "INTAKE_TOKENS": "it-token-0123456789abcdef", "WEBHOOK_SECRET": "it-hook-0123456789abcdef",
            "WORKER_METRICS_PORT": "0"}  # fmt: skip


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (["worker", "--processes", "1", "--threads", "1"], "OTEL_TRACES_EXPORTER", "zipkin"),
        (["serve", "--port", str(free_port())], "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ],
)
def test_a_bad_otel_variable_stops_the_command_naming_it(
    env: dict[str, str], command: list[str], variable: str, value: str
) -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", variable: value}
    result = run(command, {**env, **otel})
    assert result.returncode == 78, result.stderr
    assert f"{variable}: " in result.stderr
