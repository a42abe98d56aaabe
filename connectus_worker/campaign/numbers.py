"""A fast path for :func:`domain.validation.normalize_number`, for campaign files.

``normalize_number`` (phonenumbers' parse, is_possible, is_valid) costs about
50 µs a number: 50 s for a million-row campaign. :class:`FastNumberNormalizer`
gives the same answer (the digits, or the same ``InvalidInput``) for common
inputs in 1-2 µs and leaves everything else to ``normalize_number``.

How: 3-20 ASCII digits (after the separators normalize_number removes, and
an optional '+' or '00') are read the way phonenumbers reads them, with the
region's metadata compiled once (:class:`~campaign.number_plans.Plan`):
the IDD prefix, the country code stripped when phonenumbers strips it (the rest matches the general
pattern and the whole does not, or the whole is too long), the national
prefix and its transform rule with phonenumbers' "only if still viable"
checks, then possible lengths (local-only refused), the general pattern and
the number types (phonenumbers' ``_number_type_helper``; the type patterns
of one length joined into one alternation, mobile first). International
input takes the first known code of its 1-3 leading digits and that code's
main region.

Speed: a regex call costs 0.2-0.5 µs here and that replay makes up to five,
so the common outcome (valid, nothing stripped but the country code) is also
one regex per form and length, whose lookaheads state the same conditions,
e.g. ``(?!IDD)(?!GEN\\Z)CC(?!NPFP)(?!0)(?=GEN\\Z)(?:TYPES)\\Z``. No match falls
through to the replay.

Certainty: the replay answers "valid", "rejected, with normalize_number's
reason" or "unsure"; only unsure goes to ``normalize_number``: non-digits, an
IDD prefix, a national number starting with 0, a number its code's main
region refuses when other regions share the code (Canada under +1), codes of
non-geographic entities or of regions with leading-digit rules. A rejected
national reading is then read as "+" + digits, as normalize_number does.

tests/unit/test_campaign_numbers.py compares both on thousands of generated
inputs: a phonenumbers upgrade that changes its parsing fails there.
``slow`` counts the calls left to ``normalize_number``.
"""

from __future__ import annotations

import re

from connectus_worker.campaign.number_plans import (
    COUNTRY_CODES,
    MAX_DIGITS,
    MIN_DIGITS,
    SEPARATORS,
    Outcome,
    Rejected,
    international,
    plan_for_region,
)
from connectus_worker.domain.validation import InvalidInput, normalize_number


class FastNumberNormalizer:
    """``normalize_number(value, field=..., default_region=...)``, fast for common input.

    Returns exactly what :func:`domain.validation.normalize_number` returns
    (digits-only E.164 without '+') or raises the same ``InvalidInput``.
    """

    def __init__(self, default_region: str = "CL") -> None:
        self.default_region = default_region
        self._plan = plan = plan_for_region(default_region)
        # The common shapes' regexes as attributes of their own: __call__ runs
        # a million times per campaign and attribute lookups add up.
        self._cc = plan.cc if plan is not None else None
        self._with_code = plan.fast_with_code if plan is not None else {}
        self._national = plan.fast_national if plan is not None else {}
        # '+' and digits starting with the region's own code need no code
        # lookup: codes are prefix-free (no shorter known code), checked here.
        cc = self._cc or ""
        prefix_free = all(cc[:size] not in COUNTRY_CODES for size in range(1, len(cc)))
        self._international = plan.fast_international if plan is not None and prefix_free else {}
        #: how many calls were left to normalize_number
        self.slow = 0
        self._runs: dict[tuple[bool, int], re.Pattern[str] | None] = {}  # common_batch's

    def __call__(self, value: object, field: str = "dst_number") -> str:
        # The common shapes first, inline (a Python call costs 0.1-0.3 µs here):
        # national digits, with or without the region's code, and '+' + that code.
        if type(value) is str:
            text = value.strip()
            cc = self._cc
            if cc is None:
                pass
            elif text.isascii() and text.isdigit():
                common = self.common(text)
                if common is not None:
                    return common
            elif text[:1] == "+":
                digits = text[1:].replace(" ", "")
                if not digits.isdigit():
                    for separator in SEPARATORS:
                        digits = digits.replace(separator, "")
                if digits.startswith(cc) and digits.isascii() and digits.isdigit():
                    fast = self._international.get(len(digits) - len(cc))
                    if fast is not None and fast.match(digits[len(cc) :]):
                        return digits
            result = self._replay(text)
            if isinstance(result, str):
                return result
            if result is not None:
                raise InvalidInput(field, result.reason)
        self.slow += 1
        return normalize_number(value, field=field, default_region=self.default_region)

    def common(self, text: str) -> str | None:
        """The digits of a stripped ``text`` of the commonest shapes (national
        digits, with or without the region's code) if valid; None otherwise (not
        a refusal: ask :meth:`__call__`). No exception, no fallback: for loops
        that call the normalizer only for the rows this leaves."""
        cc = self._cc
        if cc is None or not (text.isdigit() and text.isascii()):
            return None
        if text.startswith(cc):
            fast = self._with_code.get(len(text))
            if fast is not None and fast.match(text):
                return text
        else:
            fast = self._national.get(len(text))
            if fast is not None and fast.match(text):
                return cc + text
        return None

    def common_batch(self, texts: list[str]) -> list[str | None]:
        """``[self.common(text) for text in texts]``, with one regex call per run of
        numbers of one shape (one form, one length) instead of one per number.

        The texts are joined by line feeds and matched by the same patterns,
        each number ending at the next line feed instead of the end of the
        text, plus its shape (``[0-9]{L}`` and the code, or not, in front): a
        run of matches is a run of ``common`` answers. The number where a run
        stops goes to ``common``, and the next run starts after it. A text
        with a line feed of its own takes ``common`` for every text.
        """
        joined = "\n".join(texts) + "\n"
        cc = self._cc
        if cc is None or joined.count("\n") != len(texts):
            return [self.common(text) for text in texts]
        out: list[str | None] = []
        i, pos, n = 0, 0, len(texts)
        while i < n:
            text = texts[i]
            run = self._run_regex(text.startswith(cc), len(text))
            if run is not None:
                match = run.match(joined, pos)  # (...)*: always matches, maybe nothing
                end = pos if match is None else match.end()
                k = (end - pos) // (len(text) + 1)
                if k:
                    done = texts[i : i + k]
                    out += done if text.startswith(cc) else [cc + t for t in done]
                    i, pos = i + k, end
                    continue
            out.append(self.common(text))
            i, pos = i + 1, pos + len(text) + 1
        return out

    def _run_regex(self, with_code: bool, length: int) -> re.Pattern[str] | None:
        """Consecutive numbers of one shape, each followed by a line feed (compiled once)."""
        key = (with_code, length)
        if key not in self._runs:
            plan = self._plan
            by_length = (
                {} if plan is None else plan.batch_with_code if with_code else plan.batch_national
            )
            source = by_length.get(length)
            code = f"(?={self._cc})" if with_code else f"(?!{self._cc})"
            self._runs[key] = (
                None
                if source is None
                else re.compile(f"(?:(?=[0-9]{{{length}}}\n){code}{source}\n)*")
            )
        return self._runs[key]

    def _replay(self, text: str) -> Outcome:
        """The general path (module docstring), from the stripped input."""
        for separator in SEPARATORS:
            text = text.replace(separator, "")
        national = True
        if text[:1] == "+":
            text, national = text[1:], False
        elif text[:2] == "00":  # normalize_number reads 00 as '+' in any region
            text, national = text[2:], False
        if not (MIN_DIGITS <= len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()):
            return None
        if not national:
            return international(text)
        if self._plan is None:
            return None
        # normalize_number: the national reading first, then "+" + digits; if
        # both fail, the national reading's reason.
        result = self._plan.national(text)
        if isinstance(result, Rejected):
            other = international(text)
            return result if isinstance(other, Rejected) else other
        return result
