"""CSV campaign files, read as :class:`~core.campaign.rows.Row` objects.

The first line is the header, naming the columns (names are stripped;
empty, duplicate or data-looking names are refused). The delimiter is ',' or,
if the header has more of them, ';' or a tab: Excel writes ';' where the
decimal separator is a comma, as in most of Latin America. Lines with no
values at all (empty, or only delimiters) are skipped, but still counted.

Line numbers: the header is line 1 and the first data row line 2; a quoted
value spanning lines gives its row the line it starts on.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from core.campaign.rows import Row, make_row, not_utf8, open_text
from core.validation import InvalidInput

_DELIMITERS = (",", ";", "\t")
# A header cell like these is data: the file has no header line.
_LOOKS_LIKE_NUMBER = re.compile(r"\+?[\d ()./-]{6,}")


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
                elif not "".join(cells).strip():
                    continue  # an empty line, or one of empty cells
                elif len(cells) != width:
                    yield new_row(line, {}, f"has {len(cells)} columns, the header has {width}")
                else:
                    yield new_row(line, values_of(cells), None)
        except csv.Error as exc:
            # The csv module stops at malformed input (e.g. a value over its size limit).
            raise InvalidInput("file", f"is not valid CSV near line {end + 1}: {exc}") from None
        except UnicodeDecodeError:
            raise not_utf8(path) from None


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
