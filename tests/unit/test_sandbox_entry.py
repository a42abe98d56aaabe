"""Entry points: flags and environment become one frozen config, read at start-up."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from typer.testing import CliRunner

import sandbox.__main__ as main_module
import sandbox.server as server_module
from connectus_worker.cli.main import app
from sandbox.config import FaultConfig, SandboxConfig, config_from_env


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def fake_run(*, host: str, port: int, config: SandboxConfig) -> None:
        calls.update(host=host, port=port, config=config)

    monkeypatch.setattr(server_module, "run", fake_run)
    monkeypatch.setattr(main_module, "run", fake_run)
    return calls


def test_config_is_frozen_and_reads_only_the_given_mapping() -> None:
    config = config_from_env({"CONNECTUS_API_USER": "u", "CONNECTUS_API_KEY": "k"})
    assert (config.api_user, config.api_key) == ("u", "k")
    assert config_from_env({}).api_user == "sandbox"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.api_user = "x"  # type: ignore[misc]


def test_python_m_sandbox_flags(captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTUS_API_USER", "acct")
    monkeypatch.setenv("CONNECTUS_API_KEY", "key")
    main_module.main(
        ["--port", "9001", "--latency-ms", "50", "--drop-rate", "0.1", "--faults-on-lookups",
         "--fault-apis", "v1,qr"]
    )  # fmt: skip
    config = captured["config"]
    assert captured["port"] == 9001
    assert (config.api_user, config.api_key) == ("acct", "key")
    assert config.faults == FaultConfig(latency_ms=50, drop_rate=0.1, applies_to="all",
                                        apis=("v1", "qr"))  # fmt: skip


def test_a_bad_fault_api_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main_module.main(["--fault-apis", "v3,v9"])
    assert exited.value.code == 2
    assert "--fault-apis: apis: 'v9' is not one of v3, v1, qr" in capsys.readouterr().err


def test_cli_command_builds_the_same_config(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        app,
        ["sandbox", "--port", "9002", "--error-rate", "0.2", "--rate-429", "0.1", "--seed", "4"],
    )
    assert result.exit_code == 0, result.output
    config = captured["config"]
    assert captured["port"] == 9002 and captured["host"] == "127.0.0.1"
    assert config.faults.error_rate == 0.2 and config.faults.rate_429 == 0.1
    assert config.faults.seed == 4 and config.seed == 4


def test_cli_command_defaults(captured: dict[str, Any]) -> None:
    assert CliRunner().invoke(app, ["sandbox"]).exit_code == 0
    assert (captured["host"], captured["port"]) == ("127.0.0.1", 8081)
    assert captured["config"].faults.latency_ms == 0


def test_a_bad_fault_setting_is_named_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main_module.main(["--refusal-rate", "1", "--refusal-status", "OK"])
    assert exited.value.code == 2
    assert "refusal_status must be an ESME_ status" in capsys.readouterr().err
    result = CliRunner().invoke(app, ["sandbox", "--error-rate", "2"])
    assert result.exit_code == 2
    assert "error_rate must be in [0, 1]" in result.stderr
