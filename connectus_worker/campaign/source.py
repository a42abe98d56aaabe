"""Campaign input: CSV and JSON Lines files, or any iterable of mappings, as :class:`Row`.

Rows are streamed (a campaign may have a million recipients) and nothing is
read before the first row is asked for. A problem of one row (bad JSON, not
an object, wrong number of CSV columns, a nested value) becomes that row's
``error``; a problem of the file (unknown type, no header, duplicate column
names, not UTF-8) raises ``InvalidInput("file", reason)`` where it is found.

Values are text: stripped, JSON numbers as ``str(number)``, ``true``/``false``
as those words; JSON ``null`` means the column is absent from that row. Files
are UTF-8, with or without a byte-order mark (Excel writes one).

CSV: the first line names the columns (stripped; empty, duplicate or
data-looking names are refused). The delimiter is ',' or, if the header has
more of them, ';' or a tab (Excel writes ';' where the decimal separator is a
comma, as in most of Latin America). Lines with no values are skipped, but
counted.

Line numbers are the file's physical lines from 1 (a CSV header is line 1; a
quoted value spanning lines gives its row the line it starts on); for an
iterable, the position from 1.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

from connectus_worker.domain.validation import InvalidInput

Format = Literal["csv", "jsonl"]
_FORMATS_BY_SUFFIX: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: Records per batch (:func:`read_batches`).
BATCH_RECORDS = 1_000
_DELIMITERS = (",", ";", "\t")
# A header cell like these is data: the file has no header line.
_LOOKS_LIKE_NUMBER = re.compile(r"\+?[\d ()./-]{6,}")
_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", type(None): "null",
               bool: "a boolean", int: "a number", float: "a number"}  # fmt: skip


class Row(NamedTuple):
    """One input record: its line, its values by column (stripped: blank is ``""``),
    or why it could not be read. A named tuple: a million are built per campaign."""

    line: int
    values: dict[str, str]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CellBatch:
    """Consecutive records of one CSV file as the csv module read them (cells not
    stripped); ``lines[i]`` is the line record ``i`` starts on."""

    header: tuple[str, ...]
    records: list[list[str]]
    lines: Sequence[int]

    def row(self, i: int) -> Row | None:
        """Record ``i`` as a :class:`Row`; None for one with no values (skipped)."""
        cells = self.records[i]
        if not "".join(cells).strip():
            return None  # an empty line, or one of empty cells
        if len(cells) != len(self.header):
            return Row(
                self.lines[i], {}, f"has {len(cells)} columns, the header has {len(self.header)}"
            )
        return Row(self.lines[i], dict(zip(self.header, map(str.strip, cells), strict=True)))

    def rows(self) -> Iterator[Row]:
        """Every record as a :class:`Row`, those with no values skipped."""
        return (row for i in range(len(self.records)) if (row := self.row(i)) is not None)


#: What :func:`read_batches` yields: a CSV file's records, or rows.
Batch = CellBatch | list[Row]


def read_rows(path: Path | str, *, fmt: Format | None = None) -> Iterator[Row]:
    """The rows of a CSV or JSON Lines file, lazily.

    ``fmt`` defaults to the suffix: ``.csv``, ``.jsonl`` or ``.ndjson``. The
    type and the file's existence are checked now; the content as it is read.
    """
    path, fmt = _checked_file(path, fmt)
    if fmt == "jsonl":
        return _read_jsonl(path)
    batches = _read_csv_batches(path, BATCH_RECORDS)
    return (row for batch in batches for row in batch.rows())


def read_batches(
    path: Path | str, *, fmt: Format | None = None, size: int = BATCH_RECORDS
) -> Iterator[Batch]:
    """:func:`read_rows` in batches of ``size``: a CSV file's raw records
    (:class:`CellBatch`), a JSON Lines file's rows. Checked now, read lazily."""
    path, fmt = _checked_file(path, fmt)
    return _read_csv_batches(path, size) if fmt == "csv" else batched(_read_jsonl(path), size)


def batched(rows: Iterable[Row], size: int = BATCH_RECORDS) -> Iterator[list[Row]]:
    """Lists of ``size`` rows (the last one shorter), lazily."""
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def rows_from_iterable(items: Iterable[Mapping[str, object]]) -> Iterator[Row]:
    """Rows from mappings (e.g. an API request's list), lazily; line = position from 1."""
    for position, item in enumerate(items, 1):
        if isinstance(item, Mapping):
            yield _mapping_row(position, item)
        else:
            yield Row(position, {}, f"is a {type(item).__name__}, not a mapping of columns")


def _checked_file(path: Path | str, fmt: Format | None) -> tuple[Path, Format]:
    path = Path(path)
    if fmt is None:
        found = _FORMATS_BY_SUFFIX.get(path.suffix.lower())
        if found is None:
            hint = " (from Excel: save as 'CSV UTF-8')" if path.suffix.lower()[:4] == ".xls" else ""
            raise InvalidInput(
                "file",
                f"has an unknown type {path.suffix or '(no suffix)'!r}: "
                f"use .csv, .jsonl or .ndjson{hint}",
            )
        fmt = found
    elif fmt not in ("csv", "jsonl"):
        raise InvalidInput("fmt", f"must be 'csv' or 'jsonl', not {fmt!r}")
    if not path.is_file():
        raise InvalidInput("file", f"{str(path)!r} does not exist or is not a file")
    return path, fmt


def _open_text(path: Path) -> IO[str]:
    # utf-8-sig: a leading byte-order mark is dropped, its absence is fine.
    # newline="": the csv module handles line ends itself (quoted newlines).
    return path.open(encoding="utf-8-sig", newline="")


def _not_utf8(path: Path) -> InvalidInput:
    """The file-level error for undecodable bytes, naming the first bad line (read again)."""
    with path.open("rb") as raw:
        for line, data in enumerate(raw, 1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = data[exc.start : exc.start + 1]
                return InvalidInput(
                    "file",
                    f"is not UTF-8 text: line {line} has the byte "
                    f"{bad!r}; save the file as UTF-8 (in Excel: 'CSV UTF-8')",
                )
    return InvalidInput("file", "is not UTF-8 text; save the file as UTF-8")


# -- CSV ------------------------------------------------------------------------


def _read_csv_batches(path: Path, size: int) -> Iterator[CellBatch]:
    """The records of a CSV file in batches of ``size``, lazily.

    A batch whose records are one line each (the csv module's ``line_num``
    moved by their number) numbers them from its first; otherwise line breaks
    inside quoted values are counted (:func:`_lines`).
    """
    with _open_text(path) as file:
        try:
            header, delimiter = _header(file.readline())
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        reader = csv.reader(file, delimiter=delimiter)
        taken = 0  # physical lines the reader consumed (after the header)
        while True:
            records: list[list[str]] = []
            lines: Sequence[int]
            try:
                records.extend(
                    islice(reader, size)
                )  # extend keeps the records read before an error
            except (csv.Error, UnicodeDecodeError) as exc:
                lines = _lines(records, taken)
                if records:
                    yield CellBatch(header, records, lines)
                if isinstance(exc, UnicodeDecodeError):
                    raise _not_utf8(path) from None
                # The csv module stops at malformed input (e.g. a value over its size limit).
                end = lines[-1] + _spanned(records[-1]) if records else taken + 2
                raise InvalidInput("file", f"is not valid CSV near line {end}: {exc}") from None
            if not records:
                return
            now = reader.line_num
            if now - taken == len(records):
                lines = range(taken + 2, taken + 2 + len(records))
            else:
                lines = _lines(records, taken)
            taken = now
            yield CellBatch(header, records, lines)


def _spanned(cells: list[str]) -> int:
    """Physical lines of one record: 1 + the line breaks inside its (quoted) values.

    The file is read with ``newline=""``: ``\\r\\n``, ``\\r`` and ``\\n`` each end a line.
    """
    return 1 + sum(c.count("\n") + c.count("\r") - c.count("\r\n") for c in cells)


def _lines(records: list[list[str]], taken: int) -> list[int]:
    """The line each record starts on, ``taken`` lines after the header."""
    out = []
    line = taken + 2
    for cells in records:
        out.append(line)
        line += _spanned(cells)
    return out


def _header(first_line: str) -> tuple[tuple[str, ...], str]:
    """The column names and the delimiter; InvalidInput("file", ...) if no usable header."""
    if not first_line.strip():
        raise InvalidInput(
            "file", "has no header: its first line must name the columns (e.g. dst_number,name)"
        )
    delimiter = max(_DELIMITERS, key=first_line.count)  # ties: ',' (listed first)
    try:
        names = [name.strip() for name in next(csv.reader([first_line], delimiter=delimiter))]
    except csv.Error as exc:
        raise InvalidInput("file", f"has an unreadable header line: {exc}") from None
    seen: dict[str, int] = {}
    for column, name in enumerate(names, 1):
        if not name:
            raise InvalidInput("file", f"has no name for column {column} in its header line")
        if _LOOKS_LIKE_NUMBER.fullmatch(name) or "@" in name:
            raise InvalidInput(
                "file",
                f"has no header: its first line looks like data ({name!r}); "
                "add a first line naming the columns (e.g. dst_number,name)",
            )
        if name in seen:
            raise InvalidInput(
                "file",
                f"has the column {name!r} twice in its header (columns {seen[name]} and {column})",
            )
        seen[name] = column
    return tuple(names), delimiter


# -- JSON Lines -----------------------------------------------------------------


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for all lines (json.loads with options builds one per call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _read_jsonl(path: Path) -> Iterator[Row]:
    with _open_text(path) as file:
        try:
            for line, text in enumerate(file, 1):
                try:
                    item = _DECODER.decode(text)
                except ValueError as exc:
                    if not text.strip():
                        continue  # blank lines are allowed (and still counted)
                    yield Row(line, {}, f"is not valid JSON: {_json_reason(exc, text)}")
                    continue
                if type(item) is dict:
                    yield _mapping_row(line, item)
                else:
                    yield Row(line, {}, f"is {_json_kind(item)}, not a JSON object")
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _json_reason(exc: ValueError, line: str) -> str:
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)  # from _reject_constant
    if exc.pos >= len(line.rstrip("\r\n")):
        return f"{exc.msg} at the end of the line"
    return f"{exc.msg} at column {exc.pos + 1}"


def _json_kind(value: object) -> str:
    return _JSON_KINDS.get(type(value), f"a {type(value).__name__}")


def _mapping_row(line: int, item: Mapping[Any, object]) -> Row:
    """The row of one mapping, its values as text (see the module docstring)."""
    values: dict[str, str] = {}
    for key, value in item.items():
        if not isinstance(key, str):
            return Row(line, {}, f"has a column name that is not text: {key!r}")
        if isinstance(value, str):
            values[key] = value.strip()
        elif value is None:
            continue  # null: the column is absent from this row
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            values[key] = str(value)
        else:
            return Row(
                line,
                {},
                f"has {_json_kind(value)} in column {key!r}: only text, "
                "numbers, true/false and null are accepted",
            )
    return Row(line, values)
