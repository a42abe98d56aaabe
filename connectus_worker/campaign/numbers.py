"""A fast path for :func:`domain.validation.normalize_number`, for campaign files.

``normalize_number`` (phonenumbers' parse, is_possible, is_valid) costs about
50 µs a number: 50 s for a million-row campaign. :class:`FastNumberNormalizer`
gives the same answer (the digits, or the same ``InvalidInput``) for common
inputs in 1-2 µs and leaves everything else to ``normalize_number``.

How: 3-20 ASCII digits (after normalize_number's separators and an optional
'+' or '00') are read the way phonenumbers reads them, from the region's
metadata compiled once (:class:`Plan`): IDD prefix, country code stripped
when phonenumbers strips it, national prefix and its transform rule, possible
lengths, general pattern, number types (mobile first). The common outcome
(valid, nothing stripped but the country code) is also one regex per form and
length whose lookaheads state the same conditions, e.g.
``(?!IDD)(?!GEN END)CC(?!NPFP)(?!0)(?=GEN END)(?:TYPES)END``, END a line feed.

The replay answers "valid", "rejected" (:class:`Rejected`, normalize_number's
reason) or "unsure", left to ``normalize_number``: non-digits, an IDD prefix, a
national number starting with 0, a code shared by regions the main one refuses
(Canada under +1), non-geographic codes, leading-digit rules.
tests/unit/test_campaign_numbers.py compares both on thousands of inputs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumberDesc
from phonenumbers import NumberParseException as ParseError
from phonenumbers import ValidationResult as Length

from connectus_worker.domain.validation import (
    _PARSE_REASONS,
    _POSSIBLE_REASONS,
    InvalidInput,
    normalize_number,
)

# The separators normalize_number removes (its _SEPARATORS).
SEPARATORS = " -()./"
# phonenumbers' _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN; inputs outside
# 3..20 digits are left to normalize_number.
_MIN_NSN, _MAX_NSN = 2, 17
MIN_DIGITS, MAX_DIGITS = 3, 20
#: Where a number ends: every input is matched with a line feed after it, a batch of
#: numbers joined by them (a lookahead: not consumed).
END = "(?=\\n)"
_NO_STRIP = (Length.TOO_SHORT, Length.IS_POSSIBLE_LOCAL_ONLY, Length.INVALID_LENGTH)
# The number types _number_type_helper tries besides mobile.
_TYPE_DESCS = ("fixed_line", "premium_rate", "toll_free", "shared_cost", "voip",
               "personal_number", "pager", "uan", "voicemail")  # fmt: skip
COUNTRY_CODES = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}


@dataclass(frozen=True, slots=True)
class Rejected:
    """phonenumbers certainly refuses the reading; ``reason`` is normalize_number's."""

    reason: str


_TOO_SHORT_NSN = Rejected(_PARSE_REASONS[ParseError.TOO_SHORT_NSN])
_TOO_LONG_NSN = Rejected(_PARSE_REASONS[ParseError.TOO_LONG])
_UNKNOWN_CODE = Rejected(_PARSE_REASONS[ParseError.INVALID_COUNTRY_CODE])
Outcome = str | Rejected | None  # E.164 digits without '+' / refused / unsure


class Plan:
    """One region's metadata, compiled for the fast path (see the module docstring)."""

    def __init__(self, region: str, metadata: PhoneMetadata, general: PhoneNumberDesc) -> None:
        lengths = tuple(general.possible_length)
        local = tuple(general.possible_length_local_only)
        gen = general.national_number_pattern or "(?!)"
        idd = metadata.international_prefix or "(?!)"
        npfp = metadata.national_prefix_for_parsing or ""
        self.cc = str(metadata.country_code)
        self.idd = re.compile(idd)
        self.general = re.compile(gen)
        self.npfp = re.compile(npfp) if npfp else None
        self.transform = metadata.national_prefix_transform_rule or None
        # phonenumbers' _test_number_length, by length (a transform may add digits)
        self.length = [_test_length(n, lengths, local) for n in range(MAX_DIGITS + 8)]
        self.invalid = Rejected(f"is not a valid number for region {region}")
        self.single_region = len(COUNTRY_CODE_TO_REGION_CODE[metadata.country_code or 0]) == 1
        descs = [] if metadata.same_mobile_and_fixed_line_pattern else [metadata.mobile]
        descs += [getattr(metadata, name) for name in _TYPE_DESCS]
        self.types: dict[int, re.Pattern[str]] = {}
        # The common valid outcome by length (module docstring), each number ending
        # at END: a national number after "+" and the code, a national number, the
        # code and a national number.
        self.common_international: dict[int, re.Pattern[str]] = {}
        self.common_national: dict[int, re.Pattern[str]] = {}
        self.common_with_code: dict[int, re.Pattern[str]] = {}
        no_prefix = f"(?!{npfp})" if npfp else ""
        for n in range(_MIN_NSN, _MAX_NSN + 1):
            patterns = [
                f"(?:{desc.national_number_pattern})"
                for desc in descs
                if desc is not None
                and desc.national_number_pattern
                and (not desc.possible_length or n in desc.possible_length)
            ]
            if not patterns or (lengths and n not in lengths):
                continue  # no type (or the general description) accepts the length
            types = "|".join(patterns)
            self.types[n] = re.compile(types)
            if self.length[n] != Length.IS_POSSIBLE:
                continue
            valid = f"{no_prefix}(?!0)(?=(?:{gen}){END})(?:{types}){END}"
            self.common_international[n] = re.compile(valid)
            self.common_national[n] = re.compile(f"(?!{idd}){valid}")
            whole = n + len(self.cc)
            if whole <= MAX_DIGITS:
                # Stripped for being too long, else for matching only without the code.
                kept = "" if self.length[whole] == Length.TOO_LONG else f"(?!(?:{gen}){END})"
                self.common_with_code[whole] = re.compile(f"(?!{idd}){kept}{self.cc}{valid}")

    def general_match(self, number: str) -> bool:
        """phonenumbers' ``_match_national_number(number, general_desc, False)``."""
        return self.general.fullmatch(number) is not None

    def strip_national_prefix(self, number: str) -> str:
        """phonenumbers' ``_maybe_strip_national_prefix_carrier_code`` (the number only)."""
        npfp = self.npfp
        if npfp is None or not number:
            return number
        match = npfp.match(number)
        if match is None:
            return number
        viable = self.general_match(number)
        if self.transform is None or match.groups()[-1] is None:
            rest = number[match.end() :]
        else:
            rest = npfp.sub(self.transform, number, count=1)
        if viable and not self.general_match(rest):
            return number
        return rest

    def finish(self, national: str, general_ok: bool | None = None) -> Outcome:
        """phonenumbers from its national number on: parse's end, possible, valid.

        ``general_ok``: the general pattern's verdict on ``national`` when the
        caller already has it (a regex call saved).
        """
        if len(national) < _MIN_NSN:
            return _TOO_SHORT_NSN
        if self.npfp is not None:
            stripped = self.strip_national_prefix(national)
            if len(stripped) >= len(self.length):
                return None  # a transform rule that lengthens: not expected, not replayed
            if stripped != national and self.length[len(stripped)] not in _NO_STRIP:
                national, general_ok = stripped, None
        n = len(national)
        if n < _MIN_NSN:
            return _TOO_SHORT_NSN
        if n > _MAX_NSN:
            return _TOO_LONG_NSN
        if national[0] == "0":
            return None  # the "Italian leading zero": not replayed
        length = self.length[n]
        if length != Length.IS_POSSIBLE:
            return Rejected(_POSSIBLE_REASONS.get(length, "is not a possible number"))
        types = self.types.get(n)
        if (
            types is not None
            and (general_ok or (general_ok is None and self.general_match(national)))
            and types.fullmatch(national)
        ):
            return self.cc + national
        # Invalid for the code's main region; another region sharing it may accept it.
        return self.invalid if self.single_region else None

    def national(self, digits: str) -> Outcome:
        """``phonenumbers.parse(digits, region)`` and the checks."""
        if self.idd.match(digits):
            return None  # read as IDD + country code by phonenumbers
        cc = self.cc
        if digits.startswith(cc):
            rest = self.strip_national_prefix(digits[len(cc) :])
            if self.length[len(digits)] == Length.TOO_LONG:
                return self.finish(rest)
            whole_ok = self.general_match(digits)
            if not whole_ok and self.general_match(rest):
                return self.finish(rest, general_ok=True)
            return self.finish(digits, general_ok=whole_ok)
        return self.finish(digits)


def _test_length(n: int, lengths: tuple[int, ...], local: tuple[int, ...]) -> int:
    """phonenumbers' ``_test_number_length`` for the general description."""
    if n in local:
        return Length.IS_POSSIBLE_LOCAL_ONLY
    if lengths[0] == n:
        return Length.IS_POSSIBLE
    if lengths[0] > n:
        return Length.TOO_SHORT
    if lengths[-1] < n:
        return Length.TOO_LONG
    return Length.IS_POSSIBLE if n in lengths[1:] else Length.INVALID_LENGTH


@functools.cache
def plan_for_region(region: str) -> Plan | None:
    """The compiled plan, or None where the fast path cannot be exact."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or region not in phonenumbers.SUPPORTED_REGIONS:
        return None
    general = metadata.general_desc
    regions = COUNTRY_CODE_TO_REGION_CODE.get(metadata.country_code or 0, ())
    if general is None or not regions or regions[0] != region:
        return None  # not the main region of its code (e.g. CA under +1): validity differs
    if metadata.leading_digits is not None:
        return None  # region_code_for_number would decide by leading digits
    if not general.possible_length or -1 in general.possible_length:
        return None
    npfp = metadata.national_prefix_for_parsing
    if metadata.national_prefix_transform_rule and not (npfp and re.compile(npfp).groups):
        return None  # phonenumbers itself would fail on such metadata
    try:
        return Plan(region, metadata, general)
    except re.error:
        return None  # a pattern that does not combine: stay on the slow path


@functools.cache
def plan_for_code(cc: int) -> Plan | None:
    region = COUNTRY_CODE_TO_REGION_CODE[cc][0]
    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return None
    return plan_for_region(region)


def international(digits: str) -> Outcome:
    """``phonenumbers.parse("+" + digits, None)`` and the checks."""
    for size in (1, 2, 3):  # the first known code wins, as in phonenumbers
        cc = COUNTRY_CODES.get(digits[:size])
        if cc is not None:
            plan = plan_for_code(cc)
            return None if plan is None else plan.finish(digits[size:])
    return _UNKNOWN_CODE  # also a code starting with 0


class FastNumberNormalizer:
    """``normalize_number(value, field=..., default_region=...)``, fast for common input.

    Returns exactly what :func:`domain.validation.normalize_number` returns
    (digits-only E.164 without '+') or raises the same ``InvalidInput``.
    """

    def __init__(self, default_region: str = "CL") -> None:
        self.default_region = default_region
        self._plan = plan = plan_for_region(default_region)
        self._cc = plan.cc if plan is not None else None
        # '+' and digits starting with the region's own code need no code
        # lookup: codes are prefix-free (no shorter known code), checked here.
        cc = self._cc or ""
        prefix_free = all(cc[:size] not in COUNTRY_CODES for size in range(1, len(cc)))
        self._international = plan.common_international if plan and prefix_free else {}
        # The common shapes' regexes as attributes of their own: common() runs for
        # every row of a file that is not CSV, and attribute lookups add up.
        self._with_code = plan.common_with_code if plan else {}
        self._national = plan.common_national if plan else {}
        #: how many calls were left to normalize_number
        self.slow = 0
        self._runs: dict[tuple[bool, int], re.Pattern[str] | None] = {}  # see _run_regex

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
                    if fast is not None and fast.match(digits[len(cc) :] + "\n"):
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
            if fast is not None and fast.match(text + "\n"):
                return text
        else:
            fast = self._national.get(len(text))
            if fast is not None and fast.match(text + "\n"):
                return cc + text
        return None

    def common_batch(self, texts: list[str]) -> list[str | None]:
        """``[self.common(text) for text in texts]``, with one regex call per run of
        numbers of one shape (one form, one length) instead of one per number.

        The texts are joined by line feeds and matched by :meth:`common`'s pattern
        repeated: a run of matches is a run of answers; the number where a run stops
        is not common, and the next run starts after it. A text with a line feed of
        its own takes ``common`` for every text.
        """
        joined = "\n".join(texts) + "\n"
        cc = self._cc
        if cc is None or joined.count("\n") != len(texts):
            return [self.common(text) for text in texts]
        out: list[str | None] = []
        i, pos, n = 0, 0, len(texts)
        while i < n:
            text = texts[i]
            with_code = text.startswith(cc)
            run = self._run_regex(with_code, len(text))
            match = None if run is None else run.match(joined, pos)  # (...)*: maybe nothing
            k = 0 if match is None else (match.end() - pos) // (len(text) + 1)
            if k:
                done = texts[i : i + k]
                out += done if with_code else [cc + t for t in done]
                i, pos = i + k, pos + k * (len(text) + 1)
            else:
                out.append(None)
                i, pos = i + 1, pos + len(text) + 1
        return out

    def _run_regex(self, with_code: bool, length: int) -> re.Pattern[str] | None:
        """Consecutive numbers of one shape (the code or not, then ``length`` digits),
        each followed by a line feed; compiled once."""
        key = (with_code, length)
        if key not in self._runs:
            one = (self._with_code if with_code else self._national).get(length)
            code = f"(?={self._cc})" if with_code else f"(?!{self._cc})"
            self._runs[key] = (
                None
                if one is None
                else re.compile(f"(?:(?=[0-9]{{{length}}}\n){code}{one.pattern}\n)*")
            )
        return self._runs[key]

    def _replay(self, text: str) -> Outcome:
        """The general path (module docstring), from the stripped input. A rejected
        national reading is then read as "+" + digits, as normalize_number does."""
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
