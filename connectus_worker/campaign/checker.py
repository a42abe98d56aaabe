"""From rows to checked, deduplicated recipients: the campaign's accept step.

:class:`RowChecker` turns :class:`~campaign.source.Row` objects into
:class:`Recipient` objects lazily, one row at a time, and keeps its findings
in :class:`CheckReport`. Per row, the first problem found is the one
reported, in this order (so a row is always reported the same way):

1. the row could not be read (``row.error``): field ``"row"``;
2. the recipient column (``dst_number``, or ``dst_email`` for e-mail) is
   absent or blank; the number or address is not valid (reason from
   :mod:`domain.validation`);
3. the recipient was already accepted from an earlier row: a duplicate, not
   an invalid row; the earlier row wins and this one is not checked further
   (it will not be sent). An invalid row does not claim its recipient, so a
   later valid row for the same recipient is accepted;
4. a field the template uses is absent or blank: the first such field (in
   the template's sorted ``fields``);
5. the rendered text is empty or too long for the kind (field ``"text"``);
   for e-mail, the rendered subject (field ``"subject"``; it must also stay
   one line, since it becomes a mail header).

So ``rows == valid + len(invalid) + duplicates`` (``+ opted_out``, rows the producer
leaves out after checking). Every invalid row is kept
(the operator's list of what to fix); duplicates are all counted but only the
first 1,000 kept as ``(line, first line)`` examples.

Speed: a million rows must be checked in seconds (docs/benchmarks.md, "The
campaign accept fast path"): numbers go through
:class:`~campaign.numbers.FastNumberNormalizer`, and :meth:`RowChecker.check_batch`
takes the common CSV record straight from its cells (no :class:`Row`, no
:class:`Recipient`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from typing import NamedTuple

from connectus_worker.campaign.numbers import FastNumberNormalizer
from connectus_worker.campaign.source import Batch, Row
from connectus_worker.campaign.template import Template
from connectus_worker.domain.models import Kind
from connectus_worker.domain.request_fields import SUBJECT_MAX_CHARS
from connectus_worker.domain.validation import (
    SMS_SEGMENT_CHARS,
    InvalidInput,
    check_content,
    normalize_email,
)

#: How many duplicate examples a report keeps (all are counted).
MAX_DUPLICATE_EXAMPLES = 1_000


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row left out, with the field at fault and why."""

    line: int
    field: str
    reason: str


class Recipient(NamedTuple):
    """A checked recipient.

    ``dst``: digits-only E.164 without '+' (SMS, WhatsApp) or the normalised
    e-mail address. ``values`` are aligned with the template's ``fields``.
    ``segments``: SMS charged for the rendered text (1 for e-mail and WhatsApp).
    """

    line: int
    dst: str
    values: tuple[str, ...]
    segments: int


@dataclass
class CheckReport:
    """What checking found; filled as recipients are pulled from the checker.

    ``segments`` is the sum over valid recipients: the SMS charged for an SMS
    campaign, the messages otherwise.
    """

    rows: int = 0
    valid: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)
    duplicates: int = 0
    duplicate_lines: list[tuple[int, int]] = field(default_factory=list)
    segments: int = 0
    max_segments: int = 0
    # Valid rows the producer left out: the number opted out of marketing (STOP).
    opted_out: int = 0


@dataclass(slots=True)
class Checked:
    """The recipients of one batch (:meth:`RowChecker.check_batch`), in order, as columns.

    ``rows[i]`` is recipient ``i`` as stored: ``[dst, value...]``, the values
    aligned with the template's ``fields``; ``lines[i]`` its line; ``segments[i]``
    as :attr:`Recipient.segments`.
    """

    lines: list[int] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)

    def keep_only(self, keep: list[bool], report: CheckReport) -> None:
        """Leave out the recipients whose ``keep`` is False, taking them off ``report``."""
        for segments, kept in zip(self.segments, keep, strict=True):
            if not kept:
                report.valid -= 1
                report.segments -= segments
        self.lines = list(compress(self.lines, keep))
        self.rows = list(compress(self.rows, keep))
        self.segments = list(compress(self.segments, keep))

    def add_all(self, recipients: Iterable[Recipient]) -> Checked:
        for recipient in recipients:
            self.lines.append(recipient.line)
            self.rows.append([recipient.dst, *recipient.values])
            self.segments.append(recipient.segments)
        return self


def _row_maker(picks: list[int]) -> Callable[[str, list[str]], list[str]]:
    """``(dst, cells) -> [dst, value...]``, the values taken from the cells at ``picks``;
    spelled out for up to two fields (the usual templates), 20% of the batch path's time."""
    if not picks:
        return lambda dst, cells: [dst]
    if len(picks) == 1:
        (a,) = picks
        return lambda dst, cells: [dst, cells[a].strip()]
    if len(picks) == 2:
        a, b = picks
        return lambda dst, cells: [dst, cells[a].strip(), cells[b].strip()]
    return lambda dst, cells: [dst, *[cells[p].strip() for p in picks]]


def _email(raw: str, field: str) -> str:
    return normalize_email(raw, field=field)


class RowChecker:
    """Checks rows for one campaign (see the module docstring for the rules)."""

    def __init__(self, kind: Kind, template: Template, *, default_region: str) -> None:
        """``kind`` and ``template`` as the planner checked them (a campaign kind; a
        subject for e-mail only): :func:`producers.campaign_plan.resolve`."""
        self.kind = kind
        self.template = template
        self.recipient_field = kind.spec.dst_field
        self.report = CheckReport()
        self._max_chars = kind.spec.max_chars
        # Phone numbers only: e-mail never takes the fast paths.
        self._numbers = None if kind.spec.email else FastNumberNormalizer(default_region)
        # dst -> line of its accepted row; kept across calls, like the report
        self._first_line: dict[str, int] = {}

    def check(self, rows: Iterable[Row]) -> Iterator[Recipient]:
        """The valid, first-seen recipients of ``rows``, lazily; findings go to ``report``.

        The report is updated in place as rows are pulled (callers may amend it).
        """
        # Locals: this loop runs a million times, and attribute lookups add up.
        report = self.report
        invalid = report.invalid.append
        duplicate_lines = report.duplicate_lines
        column = self.recipient_field
        normalize = _email if self._numbers is None else self._numbers
        fields = self.template.fields
        width = len(fields)
        render = self.template.render
        max_chars = self._max_chars
        segmented = self.kind.spec.segmented
        is_email = self.kind.spec.email
        first_line = self._first_line
        for row in rows:
            report.rows += 1
            line = row.line
            if row.error is not None:
                invalid(InvalidRow(line, "row", row.error))
                continue
            row_values = row.values
            raw = row_values.get(column)
            if not raw:  # values are stripped: blank is ""
                reason = "is empty" if raw is not None else "is missing (no such column)"
                invalid(InvalidRow(line, column, reason))
                continue
            try:
                dst = normalize(raw, column)
            except InvalidInput as exc:
                invalid(InvalidRow(line, exc.field, exc.reason))
                continue
            # E-mail: Ana@x.cl and ana@x.cl are one person to every mail provider,
            # though RFC 5321 lets a local part differ by case: never mail twice.
            key = dst.lower() if is_email else dst
            first = first_line.get(key)
            if first is not None:
                report.duplicates += 1
                if len(duplicate_lines) < MAX_DUPLICATE_EXAMPLES:
                    duplicate_lines.append((line, first))
                continue
            values = tuple([row_values.get(name, "") for name in fields])
            if width and not all(values):
                name = fields[values.index("")]
                state = "missing" if name not in row_values else "empty"
                invalid(InvalidRow(line, name, f"is required by the template but {state}"))
                continue
            text = render(values)
            # check_content's conditions, inline; it is called for its reason
            # only when they fail (blank: "" or all whitespace, as str.strip).
            if len(text) > max_chars or not text or text.isspace() or is_email or "\x00" in text:
                try:
                    check_content(text, field="text", max_chars=max_chars)
                    if is_email:
                        self._check_subject(values)
                except InvalidInput as exc:
                    invalid(InvalidRow(line, exc.field, exc.reason))
                    continue
            # sms_segments: ceil(characters / 160), at least 1
            segments = (len(text) + SMS_SEGMENT_CHARS - 1) // SMS_SEGMENT_CHARS if segmented else 1
            first_line[key] = line
            report.valid += 1
            report.segments += segments
            if segments > report.max_segments:
                report.max_segments = segments
            yield Recipient(line, dst, values, segments)

    def check_batch(self, batch: Batch) -> Checked:
        """:meth:`check` for one batch (:func:`campaign.source.read_batches`).

        The same recipients and findings, in the same order. CSV records of
        the common kind (the right width, a number of the normaliser's
        :meth:`~campaign.numbers.FastNumberNormalizer.common_batch` shapes, not
        seen before, every field filled, a text that needs no check) are taken
        from their cells with no :class:`Row` or :class:`Recipient` (3-4x
        cheaper); every other record goes through :meth:`check`, in its place.
        """
        out = Checked()
        if isinstance(batch, list):  # rows: JSON Lines or an iterable
            return out.add_all(self.check(batch))
        header, fields = batch.header, self.template.fields
        if self._numbers is None or not {self.recipient_field, *fields} <= set(header):
            # e-mail, or a column missing: every record the general way
            return out.add_all(self.check(batch.rows()))
        at = header.index(self.recipient_field)
        make_row = _row_maker([header.index(name) for name in fields])
        width = len(header)
        records = batch.records
        # The numbers first, all at once ("" for a record of another width: the
        # general way), then one pass for the rest.
        numbers = self._numbers.common_batch(
            [c[at].strip() if len(c) == width else "" for c in records]
        )
        render = self.template.render_row
        max_chars = self._max_chars
        segmented = self.kind.spec.segmented
        first_line = self._first_line
        lines, rows, segments = out.lines, out.rows, out.segments
        general = 0  # recipients from check(), already in the report
        general_segments = 0
        for i, (line, cells, dst) in enumerate(zip(batch.lines, records, numbers, strict=True)):
            if dst is not None and dst not in first_line:
                row = make_row(dst, cells)
                if all(row):
                    text = render(row)
                    n = len(text)
                    if n <= max_chars and text and not text.isspace():
                        first_line[dst] = line
                        lines.append(line)
                        rows.append(row)
                        # sms_segments: ceil(characters / 160), at least 1
                        segments.append((n + SMS_SEGMENT_CHARS - 1) // SMS_SEGMENT_CHARS
                                        if segmented else 1)  # fmt: skip
                        continue
            slow = batch.row(i)
            if slow is not None:
                for recipient in self.check((slow,)):
                    out.add_all((recipient,))
                    general += 1
                    general_segments += recipient.segments
        report = self.report
        fast = len(rows) - general
        report.rows += fast
        report.valid += fast
        report.segments += sum(segments) - general_segments
        if segments:
            report.max_segments = max(report.max_segments, max(segments))
        return out

    def _check_subject(self, values: tuple[str, ...]) -> None:
        subject = self.template.render_subject(values) if self.template.render_subject else ""
        check_content(subject, field="subject", max_chars=SUBJECT_MAX_CHARS)
        if "\n" in subject or "\r" in subject:
            raise InvalidInput("subject", "has a line break (from a value of this row)")
