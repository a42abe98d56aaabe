"""Campaign input: CSV and JSON Lines files, or any iterable of mappings, as :class:`Row`.

Rows are streamed: a file is read line by line and never held whole (a
campaign may have a million recipients), and nothing is read before the first
row is asked for. Problems of one row (bad JSON, not an object, wrong number
of CSV columns, a nested value) become that row's ``error``, so one bad line
does not stop a campaign; problems of the file (unknown type, no header,
duplicate column names, not UTF-8) raise ``InvalidInput("file", reason)``,
the ones found while reading at the point they are found.

Values are text: surrounding whitespace is stripped, JSON numbers become
``str(number)``, ``true``/``false`` stay as those words, and JSON ``null``
means the column is absent from that row. Files are UTF-8, with or without
a byte-order mark (Excel writes one).

CSV: see :mod:`campaign.csv_rows`.

Line numbers are the file's physical lines, 1-based: in a CSV file the header
is line 1 and the first data row line 2 (a quoted value spanning lines gives
its row the line it starts on); for an iterable, the position from 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from connectus_worker.campaign.csv_rows import BATCH_RECORDS, CellBatch, read_csv, read_csv_batches
from connectus_worker.campaign.rows import Row, frozen_maker, make_row, not_utf8, open_text
from connectus_worker.domain.validation import InvalidInput

__all__ = [
    "Batch", "CellBatch", "Format", "Row", "batched", "frozen_maker", "read_batches",
    "read_rows", "rows_from_iterable",
]  # fmt: skip

Format = Literal["csv", "jsonl"]
#: What :func:`read_batches` yields: a CSV file's records, or rows.
Batch = CellBatch | list[Row]
_FORMATS_BY_SUFFIX: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_rows(path: Path | str, *, fmt: Format | None = None) -> Iterator[Row]:
    """The rows of a CSV or JSON Lines file, lazily.

    ``fmt`` defaults to the suffix: ``.csv``, ``.jsonl`` or ``.ndjson``. The
    type and the file's existence are checked now; the content as it is read.
    """
    path, fmt = _checked_file(path, fmt)
    return read_csv(path) if fmt == "csv" else _read_jsonl(path)


def read_batches(path: Path | str, *, fmt: Format | None = None) -> Iterator[Batch]:
    """:func:`read_rows` in batches: a CSV file's raw records (:class:`CellBatch`),
    a JSON Lines file's rows by the thousand. Checked now, read lazily, as there."""
    path, fmt = _checked_file(path, fmt)
    return read_csv_batches(path) if fmt == "csv" else batched(_read_jsonl(path))


def batched(rows: Iterable[Row], size: int = BATCH_RECORDS) -> Iterator[list[Row]]:
    """Lists of ``size`` rows (the last one shorter), lazily."""
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _checked_file(path: Path | str, fmt: Format | None) -> tuple[Path, Format]:
    path = Path(path)
    if fmt is None:
        found = _FORMATS_BY_SUFFIX.get(path.suffix.lower())
        if found is None:
            hint = " (from Excel: save as 'CSV UTF-8')" if path.suffix.lower()[:4] == ".xls" else ""
            raise InvalidInput(
                "file",
                f"has an unknown type {path.suffix or '(no suffix)'!r}: use .csv, "
                f".jsonl or .ndjson{hint}",
            )
        fmt = found
    elif fmt not in ("csv", "jsonl"):
        raise InvalidInput("fmt", f"must be 'csv' or 'jsonl', not {fmt!r}")
    if not path.is_file():
        raise InvalidInput("file", f"{str(path)!r} does not exist or is not a file")
    return path, fmt


def rows_from_iterable(items: Iterable[Mapping[str, object]]) -> Iterator[Row]:
    """Rows from mappings (e.g. an API request's list), lazily; line = position from 1."""
    for position, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            yield Row(position, {}, f"is a {type(item).__name__}, not a mapping of columns")
            continue
        values = _text_values(item)
        if isinstance(values, str):
            yield Row(position, {}, values)
        else:
            yield make_row(position, values, None)


def _read_jsonl(path: Path) -> Iterator[Row]:
    decode = _DECODER.decode
    with open_text(path) as file:
        try:
            for line, text in enumerate(file, 1):
                try:
                    item = decode(text)
                except ValueError as exc:
                    if not text.strip():
                        continue  # blank lines are allowed (and still counted)
                    yield Row(line, {}, f"is not valid JSON: {_json_reason(exc, text)}")
                    continue
                if type(item) is not dict:
                    yield Row(line, {}, f"is {_json_kind(item)}, not a JSON object")
                    continue
                values = _text_values(item)
                if isinstance(values, str):
                    yield Row(line, {}, values)
                else:
                    yield make_row(line, values, None)
        except UnicodeDecodeError:
            raise not_utf8(path) from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for all lines (json.loads with options builds one per call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _json_reason(exc: ValueError, line: str) -> str:
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)  # from _reject_constant
    if exc.pos >= len(line.rstrip("\r\n")):
        return f"{exc.msg} at the end of the line"
    return f"{exc.msg} at column {exc.pos + 1}"


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _text_values(item: Mapping[Any, object]) -> dict[str, str] | str:
    """The values as text (see the module docstring), or the reason the row is refused."""
    values: dict[str, str] = {}
    for key, value in item.items():
        if not isinstance(key, str):
            return f"has a column name that is not text: {key!r}"
        if isinstance(value, str):
            values[key] = value.strip()
        elif value is None:
            continue  # null: the column is absent from this row
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            values[key] = str(value)
        else:
            return (
                f"has {_json_kind(value)} in column {key!r}: only text, numbers, true/false "
                "and null are accepted"
            )
    return values
