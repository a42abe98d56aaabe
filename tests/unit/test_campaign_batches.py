"""The batch accept path gives what the row-by-row one gives, row for row.

``read_batches`` + ``RowChecker.check_batch`` (the accept path of CSV
files) against ``read_rows`` + ``RowChecker.check`` (the reference): the same
recipients, invalid rows, duplicates and totals, on files built to hit every
branch: blank lines, wrong widths, quoted values over several lines (``\\n``,
``\\r\\n``, ``\\r``), numbers of every shape, duplicates, blank and long fields,
a template field absent from the header, and batch edges.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from connectus_worker.campaign.checker import Checked, RowChecker
from connectus_worker.campaign.numbers import FastNumberNormalizer
from connectus_worker.campaign.source import CellBatch, read_batches, read_rows
from connectus_worker.campaign.template import Template
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import InvalidInput, normalize_number

NUMBERS = ["56987654321", "987654321", "+56 9 8765 4321", "56287654321", "5698765432",
           "12345", "", "  ", "abc", "56987654321", "0056987654322", "+1 415 555 2671",
           " 56911111111 ", "(9) 8765-4322", "569123"]  # fmt: skip
NAMES = ["Ana", "", "  ", "José Ñuñez", "x" * 200, "line\nbreak", "a\r\nb", "c\rd", "Bea"]


def messy_csv(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["dst_number,name,extra"]
    for i in range(rows):
        roll = rng.random()
        if roll < 0.03:
            lines.append("")
        elif roll < 0.05:
            lines.append(",,")
        elif roll < 0.08:
            lines.append(f"5697{i:07d},only two")
        else:
            number = rng.choice(NUMBERS) if roll < 0.4 else f"5697{rng.randrange(10**7):07d}"
            name = rng.choice(NAMES)
            quoted = '"' + name.replace('"', '""') + '"'
            lines.append(f"{number},{quoted},{i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    return path


def reference(path: Path, kind: Kind, template: Template) -> tuple[RowChecker, Checked]:
    checker = RowChecker(kind, template, default_region="CL")
    return checker, Checked().add_all(checker.check(read_rows(path)))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("kind", "text"),
    [(Kind.SMS, "Hola {name}"), (Kind.SMS, "{name} {extra}"), (Kind.WHATSAPP, "Hola {name}"),
     (Kind.SMS, "Hola {missing}"), (Kind.SMS, "Sin campos")],
)  # fmt: skip
def test_batches_give_what_rows_give(tmp_path: Path, seed: int, kind: Kind, text: str) -> None:
    path = messy_csv(tmp_path / "list.csv", 2_500, seed)
    template = Template.parse(text)
    expected_checker, expected = reference(path, kind, template)
    checker = RowChecker(kind, template, default_region="CL")
    got = Checked()
    for batch in read_batches(path, size=97):  # batch edges fall everywhere
        part = checker.check_batch(batch)
        got.lines += part.lines
        got.rows += part.rows
        got.segments += part.segments
    assert got == expected
    assert checker.report == expected_checker.report
    # Not vacuous: valid rows, invalid rows and duplicates all occur.
    report = checker.report
    if "missing" not in text:
        assert report.valid > 1000 and report.duplicates > 10
    assert len(report.invalid) > 50


def test_batch_line_numbers_match_read_rows_with_multiline_values(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(
        b'dst_number,name\r\n56911111111,"a\nb"\r\n\r\n56922222222,"c\r\nd"\r\n'
        b'56933333333,"e\rf"\r\n56944444444,g\r\n,\r\n56955555555,h,extra\r\n56966666666,i\r\n'
    )
    rows = [r for r in read_rows(path)]
    for size in (1, 2, 3, 1000):
        batches = [b for b in read_batches(path, size=size) if isinstance(b, CellBatch)]
        from_batches = [r for b in batches for i in range(len(b.records))
                        if (r := b.row(i)) is not None]  # fmt: skip
        assert from_batches == rows, size
    # lines 3, 6, 8: inside quoted values; 4: empty; 10: empty cells; 11: three columns
    assert [r.line for r in rows] == [2, 5, 7, 9, 11, 12]
    assert rows[4].error == "has 3 columns, the header has 2"


def test_csv_errors_name_the_same_line_in_batches(tmp_path: Path) -> None:
    import csv

    limit = csv.field_size_limit()
    path = tmp_path / "list.csv"
    path.write_text(f'dst_number,name\n56911111111,"a\nb"\n56922222222,{"x" * (limit + 1)}\n')
    with pytest.raises(InvalidInput) as by_rows:
        list(read_rows(path))
    with pytest.raises(InvalidInput) as by_batches:
        list(read_batches(path))
    assert by_batches.value.reason == by_rows.value.reason
    assert "near line 4" in by_rows.value.reason


def test_common_is_normalize_number_or_none() -> None:
    fast = FastNumberNormalizer("CL")
    seen = 0
    for value in [*NUMBERS, "56987654321", "987654321", "56912345678", "212345678", "5691234567"]:
        digits = fast.common(value.strip())
        if digits is not None:
            seen += 1
            assert digits == normalize_number(value, default_region="CL")
    assert seen >= 4
    assert FastNumberNormalizer("XX").common("56987654321") is None
