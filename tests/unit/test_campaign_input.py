"""The input side of campaigns: templates, row sources and the row checker."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectus_worker.campaign.checker import (
    MAX_DUPLICATE_EXAMPLES,
    InvalidRow,
    Recipient,
    RowChecker,
)
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.campaign.source import Row, read_rows, rows_from_iterable
from connectus_worker.campaign.template import Template
from connectus_worker.config import load_settings
from connectus_worker.domain.models import SMS_MAX_CHARS, Kind
from connectus_worker.domain.validation import (
    InvalidInput,
    normalize_number,
    sms_segments,
)
from connectus_worker.producers.campaign_plan import resolve


def rejects(call: object, field: str, reason: str) -> InvalidInput:
    """``call()`` raises InvalidInput naming ``field`` with ``reason`` in its reason."""
    assert callable(call)
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field
    assert reason in caught.value.reason, caught.value.reason
    return caught.value


# --- templates -------------------------------------------------------------


def test_template_fields_are_sorted_unique_and_include_the_subject() -> None:
    template = Template.parse("Hola {name}, tu código es {code}. {name}", "Factura {invoice}")
    assert template.fields == ("code", "invoice", "name")
    assert template.render(("4821", "F-7", "Ana")) == "Hola Ana, tu código es 4821. Ana"
    assert template.render_subject is not None
    assert template.render_subject(("4821", "F-7", "Ana")) == "Factura F-7"
    assert (
        template.render_row(("56911", "4821", "F-7", "Ana")) == "Hola Ana, tu código es 4821. Ana"
    )
    assert Template.parse("Hola").render_subject is None


def test_template_literal_braces_and_values_are_not_reinterpreted() -> None:
    template = Template.parse("{{literal}} {name} }}{{")
    assert template.fields == ("name",)
    # A value that looks like a field stays as it is: no second formatting pass.
    assert template.render(("{code} {0} {{x}}",)) == "{literal} {code} {0} {{x}} }{"
    assert Template.parse("{{}}").render(()) == "{}"


def test_template_survives_pickling_and_renders_one_or_many_fields() -> None:
    for text in ("Hola", "{a}", "Hola {a}!", "{a}{b} y {a}", "x {a} {b} {c} y"):
        template = pickle.loads(pickle.dumps(Template.parse(text, "Re: {a}")))  # noqa: S301 - our own bytes
        values = {"a": "1", "b": "2", "c": "3"}
        aligned = tuple(values[f] for f in template.fields)
        assert template.render(aligned) == text.format(**values)
        assert template.render_row(("dst", *aligned)) == text.format(**values)
        assert template.render_subject is not None
        assert template.render_subject(aligned) == "Re: 1"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Hola {}", "positional field {}"),
        ("Hola {0}", "positional field {0}"),
        ("Hola {user.__class__}", "attribute or index access in {user.__class__}"),
        ("Hola {a[0]}", "attribute or index access in {a[0]}"),
        ("Hola {name!r}", "conversion in {name!r}"),
        ("Hola {name:>10}", "format spec in {name:>10}"),
        ("Hola {name", "unbalanced"),
        ("Hola name}", "unbalanced"),
        ("Hola {1name}", "invalid field name in {1name}"),
        ("Hola { name }", "invalid field name"),
        ("", "is empty"),
        ("  \n ", "is empty"),
    ],
)
def test_template_parse_errors_name_the_text(text: str, reason: str) -> None:
    rejects(lambda: Template.parse(text), "text", reason)


def test_template_parse_errors_name_the_subject() -> None:
    rejects(lambda: Template.parse("Hola", "Factura {n.x}"), "subject", "attribute or index")
    rejects(lambda: Template.parse("Hola", " "), "subject", "is empty")


# --- sources ---------------------------------------------------------------


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_rows_with_line_numbers_stripped_values_and_a_bom(tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        " dst_number , name \r\n56987654321, Ana \r\n\r\n+56 9 8765 4322,José\r\n",
        encoding="utf-8-sig",
    )
    rows = list(read_rows(path))
    assert rows == [
        Row(2, {"dst_number": "56987654321", "name": "Ana"}),
        Row(4, {"dst_number": "+56 9 8765 4322", "name": "José"}),  # line 3 is blank
    ]


def test_csv_semicolons_quoted_lines_and_wrong_column_counts(tmp_path: Path) -> None:
    path = write(
        tmp_path / "excel.CSV",
        'dst_number;name\n56987654321;"Ana\nMaría"\n56987654322\n;;\n56987654323;Luz;extra\n'
        "56987654324;Eva\n",
    )
    rows = list(read_rows(path))
    assert [(row.line, row.error) for row in rows] == [
        (2, None),
        (4, "has 1 columns, the header has 2"),
        (6, "has 3 columns, the header has 2"),  # line 5 has only delimiters: skipped
        (7, None),
    ]
    assert rows[0].values == {"dst_number": "56987654321", "name": "Ana\nMaría"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "has no header"),
        ("\nname\n", "has no header"),
        ("56987654321,Ana\n56987654322,José\n", "looks like data ('56987654321')"),
        ("email,name\nana@example.com,Ana\n", None),
        ("ana@example.com,Ana\n", "looks like data ('ana@example.com')"),
        (
            "dst_number,name,dst_number\n1,2,3\n",
            "'dst_number' twice in its header (columns 1 and 3)",
        ),
        ("dst_number,,name\n", "no name for column 2"),
    ],
)
def test_csv_header_problems_are_file_errors(
    tmp_path: Path, content: str, reason: str | None
) -> None:
    path = write(tmp_path / "list.csv", content)
    if reason is None:
        assert [row.line for row in read_rows(path)] == [2]
    else:
        rejects(lambda: list(read_rows(path)), "file", reason)


def test_file_type_and_existence_are_checked_when_called(tmp_path: Path) -> None:
    rejects(lambda: read_rows(tmp_path / "list.xlsx"), "file", "unknown type '.xlsx'")
    rejects(lambda: read_rows(tmp_path / "missing.csv"), "file", "does not exist")
    rejects(lambda: read_rows(tmp_path / "x.csv", fmt="xml"), "fmt", "must be 'csv' or 'jsonl'")  # type: ignore[arg-type]
    path = write(tmp_path / "list.txt", "dst_number\n56987654321\n")
    assert list(read_rows(path, fmt="csv")) == [Row(2, {"dst_number": "56987654321"})]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "latin1.csv", "dst_number,name\n56987654321,Jose\n56987654322,José\n", "latin-1"
    )
    rejects(
        lambda: list(read_rows(path)), "file", "is not UTF-8 text: line 3 has the byte b'\\xe9'"
    )


def test_files_are_streamed_not_loaded_whole(tmp_path: Path) -> None:
    # A bad byte 200 kB in: the first rows come out before it is read.
    good = "".join(f"5698765{i:04d},Ana\n" for i in range(10_000))
    path = tmp_path / "big.csv"
    path.write_bytes(b"dst_number,name\n" + good.encode() + b"56987654321,Jos\xe9\n")
    rows = read_rows(path)
    assert next(rows).line == 2
    assert next(rows).line == 3
    rejects(lambda: list(rows), "file", "line 10002")


def test_jsonl_values_bad_lines_and_line_numbers(tmp_path: Path) -> None:
    lines = [
        json.dumps({"dst_number": 56987654321, "name": " Ana ", "vip": True, "nick": None}),
        "",
        '{"dst_number": "56987654322", ',
        "[1, 2]",
        '{"dst_number": "56987654325" "name": "Eva"}',
        json.dumps({"dst_number": "56987654323", "meta": {"a": 1}}),
        json.dumps({"dst_number": "56987654324", "score": 1.5}),
        '{"dst_number": NaN}',
    ]
    path = write(tmp_path / "list.ndjson", "\ufeff" + "\n".join(lines) + "\n")
    rows = list(read_rows(path))
    assert rows[0] == Row(1, {"dst_number": "56987654321", "name": "Ana", "vip": "true"})
    assert [(row.line, row.error) for row in rows[1:]] == [
        (
            3,
            "is not valid JSON: Expecting property name enclosed in double quotes at the end of the line",
        ),
        (4, "is an array, not a JSON object"),
        (5, "is not valid JSON: Expecting ',' delimiter at column 30"),
        (6, "has an object in column 'meta': only text, numbers, true/false and null are accepted"),
        (7, None),
        (8, "is not valid JSON: NaN is not a JSON number"),
    ]
    assert rows[5].values == {"dst_number": "56987654324", "score": "1.5"}


def test_rows_from_an_iterable_are_numbered_from_one() -> None:
    items: list[object] = [{"dst_number": " 56987654321 ", "n": 7}, "56987654322", {"x": [1]}]
    rows = list(rows_from_iterable(items))  # type: ignore[arg-type]
    assert rows[0] == Row(1, {"dst_number": "56987654321", "n": "7"})
    assert rows[1] == Row(2, {}, "is a str, not a mapping of columns")
    assert rows[2].line == 3
    assert rows[2].error is not None and "an array in column 'x'" in rows[2].error


def failing_after(count: int) -> Iterator[dict[str, str]]:
    """``count`` rows, then an error: pulling one more shows eager consumption."""
    for i in range(count):
        yield {"dst_number": f"5698765{i:04d}", "name": "Ana"}
    raise AssertionError(f"item {count + 1} was pulled")


def test_sources_are_lazy() -> None:
    rows = rows_from_iterable(failing_after(3))
    assert [next(rows).line for _ in range(3)] == [1, 2, 3]
    with pytest.raises(AssertionError, match="item 4 was pulled"):
        next(rows)


# --- checker ---------------------------------------------------------------

HOLA = Template.parse("Hola {name}, tu código es {code}")


def sms_checker(template: Template = HOLA) -> RowChecker:
    return RowChecker(Kind.SMS, template, default_region="CL")


def test_valid_rows_become_normalised_recipients_with_the_template_values() -> None:
    checker = sms_checker()
    rows = [
        Row(2, {"dst_number": "+56 9 8765 4321", "name": "Ana", "code": "48", "extra": "x"}),
        Row(3, {"dst_number": "987654322", "code": "49", "name": "José"}),
    ]
    assert list(checker.check(rows)) == [
        Recipient(2, "56987654321", ("48", "Ana"), 1),  # fields order: code, name
        Recipient(3, "56987654322", ("49", "José"), 1),
    ]
    assert checker.recipient_field == "dst_number"
    report = checker.report
    assert (report.rows, report.valid, report.invalid, report.duplicates) == (2, 2, [], 0)
    assert (report.segments, report.max_segments) == (2, 1)


def test_invalid_rows_are_reported_with_the_field_and_reason() -> None:
    checker = sms_checker()
    rows = [
        Row(2, {}, "has 3 columns, the header has 2"),
        Row(3, {"name": "Ana", "code": "1"}),
        Row(4, {"dst_number": "", "name": "Ana", "code": "1"}),
        Row(5, {"dst_number": "12345", "name": "Ana", "code": "1"}),
        Row(6, {"dst_number": "56987654321", "name": "", "code": "1"}),
        Row(7, {"dst_number": "56987654322", "name": ""}),
        Row(8, {"dst_number": "56987654323", "name": "x" * SMS_MAX_CHARS, "code": "1"}),
        Row(9, {"dst_number": "hola", "name": "Ana", "code": "1"}),
    ]
    assert list(checker.check(rows)) == []
    with pytest.raises(InvalidInput) as number_error:
        normalize_number("12345", field="dst_number", default_region="CL")
    too_long = len("Hola , tu código es 1") + SMS_MAX_CHARS
    assert checker.report.invalid == [
        InvalidRow(2, "row", "has 3 columns, the header has 2"),
        InvalidRow(3, "dst_number", "is missing (no such column)"),
        InvalidRow(4, "dst_number", "is empty"),
        InvalidRow(5, "dst_number", number_error.value.reason),
        InvalidRow(6, "name", "is required by the template but empty"),
        InvalidRow(7, "code", "is required by the template but missing"),  # first in fields
        InvalidRow(
            8, "text", f"is too long: {too_long} characters, at most {SMS_MAX_CHARS} allowed"
        ),
        InvalidRow(
            9, "dst_number", "is not a phone number (only digits, spaces, + ( ) . - allowed)"
        ),
    ]
    assert number_error.value.reason == "is too short"
    assert checker.report.rows == 8 and checker.report.valid == 0


def test_duplicates_keep_the_first_valid_row_and_name_its_line() -> None:
    checker = sms_checker(Template.parse("Hola {name}"))
    rows = [
        Row(2, {"dst_number": "56987654321", "name": ""}),  # invalid: does not claim the number
        Row(3, {"dst_number": "+56 9 8765 4321", "name": "Ana"}),
        Row(4, {"dst_number": "987654321", "name": "Otra"}),
        Row(5, {"dst_number": "0056987654321", "name": ""}),  # a duplicate first
        Row(6, {"dst_number": "56987654322", "name": "Luz"}),
    ]
    assert [(r.line, r.dst, r.values) for r in checker.check(rows)] == [
        (3, "56987654321", ("Ana",)),
        (6, "56987654322", ("Luz",)),
    ]
    report = checker.report
    assert report.duplicates == 2
    assert report.duplicate_lines == [(4, 3), (5, 3)]
    assert [row.line for row in report.invalid] == [2]
    assert report.rows == report.valid + len(report.invalid) + report.duplicates


def test_duplicate_examples_are_capped_but_all_counted() -> None:
    checker = sms_checker(Template.parse("Hola"))
    rows = (Row(line, {"dst_number": "56987654321"}) for line in range(2, 2_003))
    assert len(list(checker.check(rows))) == 1
    assert checker.report.duplicates == 2_000
    assert len(checker.report.duplicate_lines) == MAX_DUPLICATE_EXAMPLES
    assert checker.report.duplicate_lines[-1] == (MAX_DUPLICATE_EXAMPLES + 2, 2)


def test_sms_segments_are_summed_and_match_sms_segments() -> None:
    checker = sms_checker(Template.parse("{text}"))
    lengths = [1, 159, 160, 161, 320, 321, 1_600]
    rows = [
        Row(i, {"dst_number": f"5698765{i:04d}", "text": "á" * n}) for i, n in enumerate(lengths)
    ]
    recipients = list(checker.check(rows))
    assert [r.segments for r in recipients] == [sms_segments("á" * n) for n in lengths]
    assert [r.segments for r in recipients] == [1, 1, 1, 2, 2, 3, 10]
    assert checker.report.segments == 20
    assert checker.report.max_segments == 10


def test_email_rows() -> None:
    template = Template.parse("<p>Hola {name}</p>", "Factura {invoice}")
    checker = RowChecker(Kind.EMAIL, template, default_region="CL")
    assert checker.recipient_field == "dst_email"
    rows = [
        Row(2, {"dst_email": "Ana@Example.COM", "name": "Ana", "invoice": "F-1"}),
        Row(3, {"dst_email": "ana@", "name": "Ana", "invoice": "F-2"}),
        Row(4, {"dst_email": "luz@example.com", "name": "Luz", "invoice": "F-3\r\nBcc: x@y.z"}),
        Row(5, {"dst_email": "Ana@example.com", "name": "Ana", "invoice": "F-4"}),
    ]
    assert list(checker.check(rows)) == [Recipient(2, "Ana@example.com", ("F-1", "Ana"), 1)]
    assert [(r.line, r.field) for r in checker.report.invalid] == [(3, "dst_email"), (4, "subject")]
    assert "is not a valid e-mail address" in checker.report.invalid[0].reason
    assert checker.report.invalid[1].reason == "has a line break (from a value of this row)"
    assert checker.report.duplicate_lines == [(5, 2)]
    assert checker.report.segments == 1


def test_whatsapp_rows_count_one_message_whatever_the_length() -> None:
    checker = RowChecker(Kind.WHATSAPP, Template.parse("{text}"), default_region="CL")
    rows = [Row(2, {"dst_number": "56987654321", "text": "x" * 4_000}),
            Row(3, {"dst_number": "56987654322", "text": "x" * 4_097})]  # fmt: skip
    assert [r.segments for r in checker.check(rows)] == [1]
    assert checker.report.invalid[0].field == "text"
    assert "at most 4096" in checker.report.invalid[0].reason


def test_the_planner_refuses_kinds_and_subjects_the_checker_can_not_take() -> None:
    settings = load_settings({})

    def plan(**given: object) -> object:
        return lambda: resolve(CampaignOptions(name="p", text="Hola", **given), settings)

    rejects(plan(kind=Kind.OTP), "kind", "must be")
    rejects(plan(kind="fax"), "kind", "must be")
    rejects(plan(kind=Kind.EMAIL, src="a@b.cl"), "subject", "is required")
    rejects(plan(subject="Asunto"), "subject", "e-mail campaigns only")
    rejects(plan(kind=Kind.EMAIL, subject="Asunto", src="nope"), "src", "not a valid e-mail")
    two_lines = {"kind": Kind.EMAIL, "src": "a@b.cl", "subject": "Asunto\nBcc: x@y.z"}
    rejects(plan(**two_lines), "subject", "line break")


def test_dedup_spans_check_calls() -> None:
    checker = RowChecker(Kind.SMS, Template.parse("{text}"), default_region="CL")
    first = [Row(2, {"dst_number": "56987654321", "text": "x" * 200})]
    assert [r.segments for r in checker.check(first)] == [2]  # counted as SMS
    again = [Row(2, {"dst_number": "+56987654321", "text": "y"})]
    assert list(checker.check(again)) == []
    assert (checker.report.rows, checker.report.duplicates) == (2, 1)


def test_check_is_lazy_and_keeps_the_report_current() -> None:
    checker = sms_checker(Template.parse("Hola {name}"))
    recipients = checker.check(rows_from_iterable(failing_after(3)))
    assert checker.report.rows == 0  # nothing read before the first recipient is asked for
    assert [next(recipients).line for _ in range(3)] == [1, 2, 3]
    assert (checker.report.rows, checker.report.valid) == (3, 3)
    with pytest.raises(AssertionError, match="item 4 was pulled"):
        next(recipients)


def test_a_csv_file_end_to_end(tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        "dst_number,name,code\n56987654321,Ana,1\n+56 9 8765 4321,Ana,2\n12,Eva,3\n987654322,Luz,\n",
    )
    checker = sms_checker()
    assert [(r.line, r.dst) for r in checker.check(read_rows(path))] == [(2, "56987654321")]
    report = checker.report
    assert report.duplicate_lines == [(3, 2)]
    assert [(r.line, r.field) for r in report.invalid] == [(4, "dst_number"), (5, "code")]
