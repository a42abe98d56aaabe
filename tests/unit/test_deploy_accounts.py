"""deploy/accounts: the kustomize overlay that adds a second Connectus account to
deploy/k8s, rendered by ``kubectl kustomize`` (offline) and read as each pod would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectus_worker.config import ConfigError, load_settings

OVERLAY = Path(__file__).resolve().parents[2] / "deploy" / "accounts"

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed"
)


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(OVERLAY)], check=True, text=True,
                         capture_output=True, timeout=60).stdout  # fmt: skip
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


def pod_env(docs: dict[tuple[str, str], dict[str, Any]], deployment: str) -> dict[str, str]:
    """The container's environment as the kubelet resolves it (ConfigMap, Secrets)."""
    [container] = docs[("Deployment", deployment)]["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(docs[("ConfigMap", source["configMapRef"]["name"])]["data"])
    for entry in container["env"]:
        ref = entry.get("valueFrom", {})
        if "secretKeyRef" in ref:
            secret = docs[("Secret", ref["secretKeyRef"]["name"])]["stringData"]
            env[entry["name"]] = secret[ref["secretKeyRef"]["key"]]  # KeyError: a missing key
        elif "configMapKeyRef" in ref:
            env[entry["name"]] = docs[("ConfigMap", ref["configMapKeyRef"]["name"])]["data"][
                ref["configMapKeyRef"]["key"]
            ]
        else:
            env[entry["name"]] = entry["value"]
    return env


def test_each_pod_gets_only_its_half_of_the_second_account(rendered: Any) -> None:
    worker, api = pod_env(rendered, "connectus-worker"), pod_env(rendered, "connectus-api")
    assert worker["CONNECTUS_ACCOUNTS"] == api["CONNECTUS_ACCOUNTS"] == "default,brand_b"
    assert {"CONNECTUS_BRAND_B_API_USER", "CONNECTUS_BRAND_B_API_KEY"} <= set(worker)
    assert "CONNECTUS_BRAND_B_WEBHOOK_SECRET" not in worker
    assert "CONNECTUS_BRAND_B_WEBHOOK_SECRET" in api
    assert not any(name.endswith("API_KEY") for name in api)  # the service calls no Connectus
    assert rendered[("Secret", "connectus-account-brand-b")]["metadata"]["namespace"] == "connectus"


def test_the_rendered_pods_start_with_both_accounts(rendered: Any) -> None:
    # The placeholders are refused in production (as deploy/k8s's); sandbox mode lets the
    # settings be read as the pods would read them.
    worker = load_settings({**pod_env(rendered, "connectus-worker"), "RUN_MODE": "sandbox"})
    assert worker.account_names == ("default", "brand_b")
    worker.require_connectus_credentials()
    assert worker.account("brand_b").credentials()[0] == "REPLACE-ME-brand-b-connectus-user"
    api = load_settings({**pod_env(rendered, "connectus-api"), "RUN_MODE": "sandbox"})
    api.require_service_settings()


def test_the_committed_placeholders_are_refused_in_production(rendered: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**pod_env(rendered, "connectus-worker"), "CONNECTUS_API_USER": "real-user",
                       "CONNECTUS_API_KEY": "real-key-0123456789", "REDIS_URL": "redis://r:6379/0",
                       "CONTENT_HASH_KEY": "k" * 40})  # fmt: skip
    assert caught.value.variable == "CONNECTUS_BRAND_B_API_USER"
    assert "REPLACE-ME" in caught.value.reason
