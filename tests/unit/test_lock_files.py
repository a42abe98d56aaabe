"""The lock files (issue 21, supply chain), checked offline: every dependency of
pyproject.toml is pinned with hashes, the runtime lock agrees with the dev lock,
and the floors exclude the releases with published advisories.

``make lock-check`` (CI) re-resolves them against the package index; this test
catches the common drift (a dependency added or a floor raised without
``make lock``) in ``make test``, without the network.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: The lock's target (Makefile LOCK_FLAGS): Linux x86_64, CPython 3.11.
TARGET = {"python_version": "3.11", "python_full_version": "3.11.13", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}  # fmt: skip
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)")


def read_lock(name: str) -> dict[str, tuple[Version, int]]:
    """{package: (version, number of hashes)} of a uv/pip-compile lock file."""
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in (ROOT / name).read_text().splitlines():
        if match := _PIN.match(line):
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            pytest.fail(f"{name}: unexpected line {line!r}")
    return pins


RUNTIME = read_lock("requirements.lock")
DEV = read_lock("requirements-dev.lock")


def requirements(group: str | None) -> list[Requirement]:
    project = PYPROJECT["project"]
    texts = project["dependencies"] if group is None else project["optional-dependencies"][group]
    found = [Requirement(text) for text in texts]
    return [r for r in found if r.marker is None or r.marker.evaluate(TARGET)]


@pytest.mark.parametrize(
    ("lock", "wanted"),
    # The image has the tracing extra (make lock's --extra otel), so both locks pin it.
    [
        (RUNTIME, requirements(None) + requirements("otel")),
        (DEV, requirements(None) + requirements("otel") + requirements("dev")),
    ],
    ids=["requirements.lock", "requirements-dev.lock"],
)
def test_every_dependency_is_pinned_within_its_range(
    lock: dict[str, tuple[Version, int]], wanted: list[Requirement]
) -> None:
    assert len(wanted) >= 10
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{name} is not in the lock: run `make lock`"
        version, _ = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} is outside {requirement.specifier}: run `make lock`"
        )


def test_every_pin_has_hashes() -> None:
    for lock in (RUNTIME, DEV):
        assert all(hashes >= 1 for _, hashes in lock.values()), [
            name for name, (_, hashes) in lock.items() if not hashes
        ]


def test_the_image_gets_the_versions_the_tests_ran_with() -> None:
    # requirements.lock is resolved under requirements-dev.lock (make lock's -c).
    assert set(RUNTIME) <= set(DEV)
    assert {name: DEV[name][0] for name in RUNTIME} == {n: v for n, (v, _) in RUNTIME.items()}


@pytest.mark.parametrize(
    ("package", "vulnerable"),
    [("starlette", "0.47.1"), ("starlette", "0.49.0"), ("starlette", "1.0.0"),
     ("starlette", "1.5.0"), ("h11", "0.14.0")],
)  # fmt: skip
def test_floors_exclude_releases_with_advisories(package: str, vulnerable: str) -> None:
    [requirement] = [r for r in requirements(None) if canonicalize_name(r.name) == package]
    assert not requirement.specifier.contains(vulnerable)
    assert not RUNTIME[package][0] <= Version(vulnerable)


def test_build_backend_floor_excludes_the_setuptools_advisory() -> None:
    [setuptools] = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert not setuptools.specifier.contains("78.1.0")
