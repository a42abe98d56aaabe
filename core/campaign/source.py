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

CSV: the first line is the header, naming the columns (names are stripped;
empty, duplicate or data-looking names are refused). The delimiter is ',' or,
if the header has more of them, ';' or a tab: Excel writes ';' where the
decimal separator is a comma, as in most of Latin America. Lines with no
values at all (empty, or only delimiters) are skipped, but still counted.

Line numbers are the file's physical lines, 1-based: in a CSV file the header
is line 1 and the first data row line 2 (a quoted value spanning lines gives
its row the line it starts on); for an iterable, the position from 1.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from core.validation import InvalidInput

Format = Literal["csv", "jsonl"]
_FORMATS_BY_SUFFIX: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_DELIMITERS = (",", ";", "\t")
# A header cell like these is data: the file has no header line.
_LOOKS_LIKE_NUMBER = re.compile(r"\+?[\d ()./-]{6,}")


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Row:
    """One input record: its line, its values by column, or why it could not be read.

    ``values`` are stripped text (the checker relies on it: blank is ``""``).
    """

    line: int
    values: dict[str, str]
    error: str | None = None


def frozen_maker(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for a frozen, slotted dataclass, 3-4x faster than ``cls(...)``.

    A frozen dataclass's ``__init__`` assigns each field through
    ``object.__setattr__`` (about 0.3 µs a field here); for a million rows
    that is seconds. This sets the slots directly, with every argument
    required (no defaults, no ``__post_init__``: refused here).
    """
    if not hasattr(cls, "__slots__") or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: frozen_maker needs slots and no __post_init__")
    setters = [vars(cls)[f.name].__set__ for f in fields(cls)]  # type: ignore[arg-type]
    new = object.__new__
    if len(setters) == 3:
        set_a, set_b, set_c = setters

        def make3(a: Any, b: Any, c: Any) -> T:
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            set_c(obj, c)
            return obj

        return make3
    if len(setters) == 4:
        set_a, set_b, set_c, set_d = setters

        def make4(a: Any, b: Any, c: Any, d: Any) -> T:
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            set_c(obj, c)
            set_d(obj, d)
            return obj

        return make4
    raise TypeError(f"{cls.__name__}: frozen_maker handles 3 or 4 fields")


_make_row = frozen_maker(Row)


def read_rows(path: Path | str, *, fmt: Format | None = None) -> Iterator[Row]:
    """The rows of a CSV or JSON Lines file, lazily.

    ``fmt`` defaults to the suffix: ``.csv``, ``.jsonl`` or ``.ndjson``. The
    type and the file's existence are checked now; the content as it is read.
    """
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
    return _read_csv(path) if fmt == "csv" else _read_jsonl(path)


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
            yield _make_row(position, values, None)


def _open(path: Path) -> IO[str]:
    # utf-8-sig: a leading byte-order mark is dropped, its absence is fine.
    # newline="": the csv module handles line ends itself (quoted newlines).
    return path.open(encoding="utf-8-sig", newline="")


def _read_csv(path: Path) -> Iterator[Row]:
    with _open(path) as file:
        try:
            header, delimiter = _header(file.readline())
            width = len(header)
            values_of = _values_maker(header)
            make_row = _make_row
            reader = csv.reader(file, delimiter=delimiter)
            end = 1  # the last physical line consumed (the header's)
            for cells in reader:
                line = end + 1
                end = reader.line_num + 1
                if len(cells) == width and cells[0]:  # the common case, tested first
                    yield make_row(line, values_of(cells), None)
                elif not "".join(cells).strip():
                    continue  # an empty line, or one of empty cells
                elif len(cells) != width:
                    yield make_row(line, {}, f"has {len(cells)} columns, the header has {width}")
                else:
                    yield make_row(line, values_of(cells), None)
        except csv.Error as exc:
            # The csv module stops at malformed input (e.g. a value over its size limit).
            raise InvalidInput("file", f"is not valid CSV near line {end + 1}: {exc}") from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _values_maker(header: list[str]) -> Callable[[list[str]], dict[str, str]]:
    """``cells -> {column: stripped cell}``; spelled out for 1-3 columns, twice as fast as zip."""
    if len(header) == 1:
        (a,) = header
        return lambda cells: {a: cells[0].strip()}
    if len(header) == 2:
        a, b = header
        return lambda cells: {a: cells[0].strip(), b: cells[1].strip()}
    if len(header) == 3:
        a, b, c = header
        return lambda cells: {a: cells[0].strip(), b: cells[1].strip(), c: cells[2].strip()}
    # strict=False: the caller checked the length (strict costs ~0.4 µs a row)
    return lambda cells: dict(zip(header, map(str.strip, cells), strict=False))


def _header(first_line: str) -> tuple[list[str], str]:
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
                f"has no header: its first line looks like data ({name!r}); add a first line "
                "naming the columns (e.g. dst_number,name)",
            )
        if name in seen:
            raise InvalidInput(
                "file",
                f"has the column {name!r} twice in its header (columns {seen[name]} and {column})",
            )
        seen[name] = column
    return names, delimiter


def _read_jsonl(path: Path) -> Iterator[Row]:
    decode = _DECODER.decode
    with _open(path) as file:
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
                    yield _make_row(line, values, None)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


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
                    f"is not UTF-8 text: line {line} has the byte {bad!r}; save the file as "
                    "UTF-8 (in Excel: 'CSV UTF-8')",
                )
    return InvalidInput("file", "is not UTF-8 text; save the file as UTF-8")
