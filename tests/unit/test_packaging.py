"""What ``pip install connectus-worker`` puts in a user's environment, and what it leaves out.

The wheel holds the product's packages and their Lua files, and nothing of
the development tooling (``sandbox``, ``devtools``, ``bench``, ``tests``);
no product module imports that tooling; ``connectus sandbox`` without it
says what is missing instead of a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("connectus_worker",)
DEV_TOOLING = ("sandbox", "devtools", "bench", "tests")


def _copy_tree(to: Path, names: tuple[str, ...]) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in names:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, to / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, to / name)


def test_the_wheel_holds_the_product_and_its_lua_files_only(tmp_path: Path) -> None:
    # Built from a copy, so that the build leaves nothing in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    _copy_tree(src, ("pyproject.toml", "README.md", *PRODUCT, "sandbox", "devtools", "bench"))
    out = tmp_path / "dist"
    build = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", build, str(out)],
        cwd=src, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = zipfile.ZipFile(out / done.stdout.split()[-1]).namelist()
    top = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert top == set(PRODUCT)
    lua = {str(p.relative_to(ROOT)) for name in PRODUCT for p in (ROOT / name).glob("**/*.lua")}
    assert len(lua) >= 30
    assert lua - set(names) == set()
    # Installed (the wheel unpacked, first on the path), every store finds its scripts.
    site = tmp_path / "site"
    zipfile.ZipFile(out / done.stdout.split()[-1]).extractall(site)
    load_all = (
        "import connectus_worker, connectus_worker.transport.broker, connectus_worker.ledger.jobs_batch, connectus_worker.ledger.delivery_status, connectus_worker.campaign.store, "
        "connectus_worker.campaign.render, connectus_worker.service.events, connectus_worker.service.idempotency, connectus_worker.worker.pipeline, "
        "connectus_worker.worker.campaign_messages; print(connectus_worker.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", load_all], cwd=tmp_path, capture_output=True, text=True,
        timeout=90, check=False, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(site / "connectus_worker" / "__init__.py")


BLOCK_DEV_TOOLING = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("product code imported " + name)
sys.meta_path.insert(0, Block())
for top in {product!r}:
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if info.name != "connectus_worker.cli.__main__":
            importlib.import_module(info.name)
print("imported")
"""


def test_no_product_module_imports_the_development_tooling() -> None:
    code = BLOCK_DEV_TOOLING.format(blocked=set(DEV_TOOLING), product=PRODUCT)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=90,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "imported"


def test_connectus_sandbox_without_the_tooling_says_what_is_missing(tmp_path: Path) -> None:
    # The installed package alone: the product's packages, no sandbox/ or devtools/ beside them.
    _copy_tree(tmp_path, PRODUCT)
    done = subprocess.run(
        [sys.executable, "-m", "connectus_worker.cli", "sandbox", "--port", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 1
    assert "not installed with the package" in done.stderr
    assert "sandbox/" in done.stderr and "Traceback" not in done.stderr
