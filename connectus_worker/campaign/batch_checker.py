"""Checking a batch of rows at once: the accept path of a large CSV file.

:class:`BatchChecker` is a :class:`~campaign.checker.RowChecker` with
:meth:`~BatchChecker.check_batch`: the same rules, recipients and report, for
a batch of :func:`campaign.source.read_batches`, with the common CSV
record checked straight from its cells. Why: row by row, reading and
checking cost about 5 µs a row (a :class:`~campaign.source.Row`, a
:class:`~campaign.checker.Recipient`, a regex call for the number and
generator steps for each); by batch, 2.5-3 µs (docs/benchmarks.md, "Accept").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress

from connectus_worker.campaign.checker import CheckReport, Recipient, RowChecker
from connectus_worker.campaign.csv_rows import CellBatch
from connectus_worker.campaign.numbers import FastNumberNormalizer
from connectus_worker.campaign.source import Batch
from connectus_worker.campaign.template import Template
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import SMS_SEGMENT_CHARS


@dataclass(slots=True)
class Checked:
    """The recipients of one batch (:meth:`BatchChecker.check_batch`), in order, as columns.

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

    def add(self, recipient: Recipient) -> None:
        self.lines.append(recipient.line)
        self.rows.append([recipient.dst, *recipient.values])
        self.segments.append(recipient.segments)


class BatchChecker(RowChecker):
    """A :class:`RowChecker` that also checks batches (:meth:`check_batch`)."""

    def __init__(
        self, kind: Kind, template: Template, *, default_region: str, src_email: str | None = None
    ) -> None:
        super().__init__(kind, template, default_region=default_region, src_email=src_email)
        # The fast path takes phone numbers only: e-mail always goes through check().
        normalizer = None if self.kind is Kind.EMAIL else FastNumberNormalizer(default_region)
        self._common: Callable[[list[str]], list[str | None]] = (
            normalizer.common_batch if normalizer is not None else lambda texts: [None] * len(texts)
        )
        self._render_stored = self.template.stored_row_renderer()

    def check_batch(self, batch: Batch) -> Checked:
        """:meth:`check` for one batch (:func:`campaign.source.read_batches`).

        The same recipients and findings, in the same order. CSV records of
        the common kind (the right width, a number of the normaliser's
        :meth:`~campaign.numbers.FastNumberNormalizer.common_batch` shapes, not
        seen before, every field filled, a text that needs no check) are taken
        from their cells with no :class:`Row` or :class:`Recipient` object
        (3-4x cheaper); every other record goes through :meth:`check`, in its
        place.
        """
        out = Checked()
        if not isinstance(batch, CellBatch):
            for recipient in self.check(batch):
                out.add(recipient)
            return out
        columns = self._columns(batch.header)
        if columns is None:  # a column missing, or e-mail: every row the general way
            found = (batch.row(i) for i in range(len(batch.records)))
            for recipient in self.check(row for row in found if row is not None):
                out.add(recipient)
            return out
        at, pick = columns
        width = len(batch.header)
        records = batch.records
        # The numbers first, all at once ("" for a record of another width: the
        # general way), then one pass for the rest.
        numbers = self._common([c[at].strip() if len(c) == width else "" for c in records])
        render = self._render_stored
        max_chars = self._max_chars
        is_sms = self.kind is Kind.SMS
        first_line = self._first_line
        lines, rows, segments = out.lines, out.rows, out.segments
        general = 0  # recipients from check(), already in the report
        general_segments = 0
        for i, (line, cells, dst) in enumerate(zip(batch.lines, records, numbers, strict=True)):
            if dst is not None and dst not in first_line:
                row = pick(dst, cells)
                if all(row):
                    text = render(row)
                    n = len(text)
                    if n <= max_chars and text and not text.isspace():
                        first_line[dst] = line
                        lines.append(line)
                        rows.append(row)
                        # sms_segments: ceil(characters / 160), at least 1
                        segments.append((n + SMS_SEGMENT_CHARS - 1) // SMS_SEGMENT_CHARS
                                        if is_sms else 1)  # fmt: skip
                        continue
            slow = batch.row(i)
            if slow is not None:
                for recipient in self.check((slow,)):
                    out.add(recipient)
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

    def _columns(
        self, header: tuple[str, ...]
    ) -> tuple[int, Callable[[str, list[str]], list[str]]] | None:
        """(index of the recipient column, ``(dst, cells) -> stored row``) for a
        header with every column used, or None: e-mail, or a column missing."""
        if self.kind is Kind.EMAIL or self.recipient_field not in header:
            return None
        if not set(self.template.fields) <= set(header):
            return None
        at = header.index(self.recipient_field)
        picks = [header.index(name) for name in self.template.fields]
        if not picks:
            return at, lambda dst, cells: [dst]
        if len(picks) == 1:
            (a,) = picks
            return at, lambda dst, cells: [dst, cells[a].strip()]
        if len(picks) == 2:
            a, b = picks
            return at, lambda dst, cells: [dst, cells[a].strip(), cells[b].strip()]
        return at, lambda dst, cells: [dst, *[cells[p].strip() for p in picks]]
