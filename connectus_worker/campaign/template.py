"""Message templates with named fields: ``"Hola {name}, tu código es {code}"``.

Syntax: ``{name}`` is a field (letters, digits and underscore, not starting
with a digit); ``{{`` and ``}}`` are literal braces. Everything else
``str.format`` would accept is refused, because templates come from operators
and ``str.format`` can do more than substitute: ``{a.__class__}`` or
``{a[0]}`` reach into objects (and could leak their internals), ``{0}``/``{}``
depend on argument order, ``{a!r}`` and ``{a:>10}`` change the text in ways a
CSV value should not trigger.

Rendering runs once per recipient (a million times for a large campaign), so
a template is parsed once and compiled into functions that take the values
aligned with ``fields`` (as stored for each recipient) and join: no
``str.format`` per row.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from connectus_worker.domain.validation import InvalidInput

_FIELD_NAME = re.compile(r"[^\W\d]\w*")  # letters (any script), digits, underscore
_BRACES_HINT = "write {{ and }} for literal braces"


Fill = Callable[[Sequence[str]], str]  # values aligned with Template.fields -> text


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed message template: ``Template(text, subject)`` (or :meth:`parse`) raises
    InvalidInput naming "text" or "subject".

    ``fields`` are the sorted, unique field names used by ``text`` and
    ``subject`` (``subject`` is for e-mail only, and may have fields too).
    ``render(values)`` and ``render_subject(values)`` (None without a subject)
    take values aligned with ``fields``; ``render_row`` takes a stored row,
    ``[dst, value...]`` (no slice per row).
    """

    text: str
    subject: str | None = None
    fields: tuple[str, ...] = field(init=False)
    render: Fill = field(init=False, repr=False, compare=False)
    render_subject: Fill | None = field(init=False, repr=False, compare=False)
    render_row: Fill = field(init=False, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str, subject: str | None = None) -> Template:
        return cls(text, subject)

    def __post_init__(self) -> None:
        text_pairs = _split(self.text, "text")
        subject_pairs = None if self.subject is None else _split(self.subject, "subject")
        names = {name for _, name in text_pairs + (subject_pairs or []) if name is not None}
        index = {name: i for i, name in enumerate(sorted(names))}
        # frozen: the derived forms are set once, here
        object.__setattr__(self, "fields", tuple(index))
        object.__setattr__(self, "render", _compile(text_pairs, index))
        compiled_subject = None if subject_pairs is None else _compile(subject_pairs, index)
        object.__setattr__(self, "render_subject", compiled_subject)
        row_index = {name: i + 1 for name, i in index.items()}
        object.__setattr__(self, "render_row", _compile(text_pairs, row_index))

    def __reduce__(self) -> tuple[type[Template], tuple[str, str | None]]:
        # The compiled forms are closures: pickle the source and parse it again.
        return (Template, (self.text, self.subject))


def _split(text: str, where: str) -> list[tuple[str, str | None]]:
    """``(literal, field name or None)`` pairs; InvalidInput(where, reason) if not allowed."""
    if not isinstance(text, str):
        raise InvalidInput(where, "must be a string")
    if not text.strip():
        raise InvalidInput(where, "is empty")
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        # "Single '}' encountered", "expected '}' before end of string", ...
        raise InvalidInput(
            where, f"has unbalanced or malformed braces ({exc}); {_BRACES_HINT}"
        ) from None
    pairs: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:  # trailing literal text
            pairs.append((literal, None))
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        shown += "}"
        if name == "" or name.isdigit():
            reason = f"has a positional field {shown}: name it, like {{name}}"
        elif "." in name or "[" in name:
            reason = f"has attribute or index access in {shown}: only plain names are allowed"
        elif conversion is not None:
            reason = f"has a conversion in {shown}: only plain {{name}} fields are allowed"
        elif spec:
            reason = f"has a format spec in {shown}: only plain {{name}} fields are allowed"
        elif not _FIELD_NAME.fullmatch(name):
            reason = (
                f"has an invalid field name in {shown}: use letters, digits and underscore, "
                f"not starting with a digit ({_BRACES_HINT})"
            )
        else:
            pairs.append((literal, name))
            continue
        raise InvalidInput(where, reason)
    return pairs


def _compile(pairs: list[tuple[str, str | None]], index: dict[str, int]) -> Fill:
    """The render function of one text: its literal parts and field slots, joined per call.

    One field, the usual case, is two concatenations, about three times
    faster than filling a list and joining it.
    """
    parts: list[str] = []
    slots: list[tuple[int, int]] = []  # (position in parts, index in fields)
    for literal, name in pairs:
        if literal:
            parts.append(literal)
        if name is not None:
            slots.append((len(parts), index[name]))
            parts.append("")
    if not slots:
        constant = "".join(parts)
        return lambda values: constant
    if len(slots) == 1:
        position, at = slots[0]
        before, after = "".join(parts[:position]), "".join(parts[position + 1 :])
        return lambda values: before + values[at] + after
    frozen_parts, frozen_slots = tuple(parts), tuple(slots)

    def fill(values: Sequence[str]) -> str:
        buffer = list(frozen_parts)
        for position, at in frozen_slots:
            buffer[position] = values[at]
        return "".join(buffer)

    return fill
