"""CSV campaign files, read as :class:`~campaign.rows.Row` objects.

The first line is the header, naming the columns (names are stripped;
empty, duplicate or data-looking names are refused). The delimiter is ',' or,
if the header has more of them, ';' or a tab: Excel writes ';' where the
decimal separator is a comma, as in most of Latin America. Lines with no
values at all (empty, or only delimiters) are skipped, but still counted.

Line numbers: the header is line 1 and the first data row line 2; a quoted
value spanning lines gives its row the line it starts on.

:func:`read_csv_batches` reads the same file as batches of raw records
(:class:`CellBatch`), for the accept path that checks the common row straight
from its cells (:meth:`campaign.checker.RowChecker.check_batch`) and
makes a :class:`Row` only for the others (:meth:`CellBatch.row`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from connectus_worker.campaign.rows import Row, make_row, not_utf8, open_text
from connectus_worker.domain.validation import InvalidInput

_DELIMITERS = (",", ";", "\t")
# A header cell like these is data: the file has no header line.
_LOOKS_LIKE_NUMBER = re.compile(r"\+?[\d ()./-]{6,}")
#: Records per :class:`CellBatch`.
BATCH_RECORDS = 1_000

ValuesOf = Callable[[list[str]], dict[str, str]]


@dataclass(frozen=True, slots=True)
class CellBatch:
    """Consecutive records of one CSV file as the csv module read them (cells not stripped).

    ``lines[i]`` is the line record ``i`` starts on; :meth:`row` is the record
    as :func:`read_csv` yields it.
    """

    header: tuple[str, ...]
    records: list[list[str]]
    lines: Sequence[int]
    values_of: ValuesOf

    def row(self, i: int) -> Row | None:
        """Record ``i`` as a :class:`Row`; None for one with no values (skipped)."""
        return _record_row(self.records[i], self.lines[i], len(self.header), self.values_of)


def read_csv(path: Path) -> Iterator[Row]:
    """The rows of a CSV file, lazily (the module docstring says how it is read)."""
    with open_text(path) as file:
        try:
            header, delimiter = _header(file.readline())
            width = len(header)
            values_of = _values_maker(header)
            new_row = make_row
            reader = csv.reader(file, delimiter=delimiter)
            end = 1  # the last physical line consumed (the header's)
            for cells in reader:
                line = end + 1
                end = reader.line_num + 1
                if len(cells) == width and cells[0]:  # the common case, tested first
                    yield new_row(line, values_of(cells), None)
                elif (row := _record_row(cells, line, width, values_of)) is not None:
                    yield row
        except csv.Error as exc:
            # The csv module stops at malformed input (e.g. a value over its size limit).
            raise InvalidInput("file", f"is not valid CSV near line {end + 1}: {exc}") from None
        except UnicodeDecodeError:
            raise not_utf8(path) from None


def read_csv_batches(path: Path, size: int = BATCH_RECORDS) -> Iterator[CellBatch]:
    """The records of a CSV file in batches of ``size``, lazily; errors as :func:`read_csv`.

    A batch whose records are one line each (the csv module's ``line_num``
    moved by their number) numbers them from its first; otherwise line breaks
    inside quoted values are counted (:func:`_lines`).
    """
    with open_text(path) as file:
        try:
            header, delimiter = _header(file.readline())
        except UnicodeDecodeError:
            raise not_utf8(path) from None
        names = tuple(header)
        values_of = _values_maker(header)
        reader = csv.reader(file, delimiter=delimiter)
        taken = 0  # physical lines the reader consumed (after the header)
        while True:
            records: list[list[str]] = []
            lines: Sequence[int]
            try:
                # extend keeps the records read before an error
                records.extend(islice(reader, size))
            except (csv.Error, UnicodeDecodeError) as exc:
                lines = _lines(records, taken)
                if records:
                    yield CellBatch(names, records, lines, values_of)
                if isinstance(exc, UnicodeDecodeError):
                    raise not_utf8(path) from None
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
            yield CellBatch(names, records, lines, values_of)


def _record_row(cells: list[str], line: int, width: int, values_of: ValuesOf) -> Row | None:
    if not "".join(cells).strip():
        return None  # an empty line, or one of empty cells
    if len(cells) != width:
        return make_row(line, {}, f"has {len(cells)} columns, the header has {width}")
    return make_row(line, values_of(cells), None)


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


def _values_maker(header: list[str]) -> ValuesOf:
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
