"""The README documents every setting, so a new variable can't go unmentioned."""

from __future__ import annotations

from pathlib import Path

from connectus_worker.config.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in table]
    assert missing == []


def test_the_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in quick and "make test" in quick


ROOT = README.parents[0]
#: The product's code: where a setting must be read to be more than a README line.
PRODUCT_DIRS = ("connectus_worker", "devtools")


def _documented_settings() -> set[str]:
    """Every variable named in the first column of the README's settings table."""
    import re

    table = README.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    table = table.split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def _product_code() -> str:
    texts = []
    for folder in PRODUCT_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def test_every_documented_setting_is_a_setting_that_some_code_reads() -> None:
    import re

    documented = _documented_settings()
    assert len(documented) > 50  # the table was found and parsed
    fields = set(Settings.model_fields)
    not_settings = sorted(name for name in documented if name.lower() not in fields)
    assert not_settings == [], "documented in the README but not in config/settings.py"
    code = _product_code()
    # Read = an attribute access (settings.x, self.settings.x, s.x) or a getattr-style
    # "x" string somewhere in the product code; the field's own declaration is neither.
    # getattr(settings, f"rate_{p}_per_s"): a name built from a template counts as read.
    templates = [
        re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[a-z]+", re.escape(found)))
        for found in re.findall(r"f[\"']([a-z_]*\{[a-z_]+\}[a-z_]*)[\"']", code)
    ]
    unread = sorted(
        name
        for name in documented
        if not re.search(rf"\.{name.lower()}\b|[\"']{name.lower()}[\"']", code)
        and not any(t.fullmatch(name.lower()) for t in templates)
    )
    assert unread == [], "documented settings that no code reads"


def test_the_read_check_would_catch_a_dead_setting() -> None:
    import re

    code = _product_code()
    assert not re.search(r"\.connectus_no_such_setting\b", code)
    assert re.search(r"\.connectus_whatsapp_src_number\b", code)


def test_every_documented_connectus_call_has_a_row_in_the_usage_table() -> None:
    import re

    from sandbox.postman import COLLECTION, load

    text = (ROOT / "docs" / "connectus-api.md").read_text(encoding="utf-8")
    usage = text.split("## Every documented call", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in usage.splitlines() if line.startswith("| `")}
    assert COLLECTION.is_file(), COLLECTION
    documented: set[str] = set()
    for request in load():
        path = re.sub(r"^https?://[^/]+", "", request.url.split("?")[0])
        path = path.removeprefix("/api_v3")
        path = re.sub(r"/[0-9a-f]{6,}$|/\d+$", "/:id", path)  # an example id in the URL
        documented.add(f"`{request.method} {path}`")
    v1_doc = next(COLLECTION.parent.glob("000_*.txt")).read_text(encoding="utf-8")
    documented |= {f"`{name}`" for name in re.findall(r"/api_v1/([a-z_]+)", v1_doc)}
    assert len(documented) > 40
    assert sorted(documented - rows) == []


def test_every_documented_connectus_call_is_reached_by_someone() -> None:
    """Each row of the usage table names at least one of producers, CLI, intake or
    worker, and none is a gap left for later."""
    text = (ROOT / "docs" / "connectus-api.md").read_text(encoding="utf-8")
    usage = text.split("## Every documented call", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in usage.splitlines() if line.startswith("| `")]
    assert len(rows) > 40
    for line in rows:
        cells = [c.strip() for c in line.replace("\\|", "/").split("|")[1:-1]]
        assert len(cells) == 6, line
        assert any(cells[2:]), f"{cells[0]}: reached by no one"
        lowered = line.lower()
        assert "none yet" not in lowered and "planned" not in lowered, line
