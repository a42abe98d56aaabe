"""phonenumbers' metadata of a region compiled for the fast number path.

:class:`Plan` replays phonenumbers' parse, is_possible and is_valid for
3-20 ASCII digits, from one region's metadata compiled once, and says
"valid", "rejected, with normalize_number's reason" (:class:`Rejected`) or
"unsure". :mod:`campaign.numbers` (which see for the method and its
limits) puts it behind :class:`~campaign.numbers.FastNumberNormalizer`.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumberDesc
from phonenumbers import NumberParseException as ParseError
from phonenumbers import ValidationResult as Length

from connectus_worker.domain.validation import _PARSE_REASONS, _POSSIBLE_REASONS

# The separators normalize_number removes (its _SEPARATORS).
SEPARATORS = " -()./"
# phonenumbers' _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN; inputs outside
# 3..20 digits are left to normalize_number.
_MIN_NSN, _MAX_NSN = 2, 17
MIN_DIGITS, MAX_DIGITS = 3, 20
#: Where a number ends in a batch of them joined by line feeds (lookahead: not consumed).
BATCH_END = "(?=\\n)"
_NO_STRIP = (Length.TOO_SHORT, Length.IS_POSSIBLE_LOCAL_ONLY, Length.INVALID_LENGTH)
# The number types _number_type_helper tries besides mobile.
_TYPE_DESCS = ("fixed_line", "premium_rate", "toll_free", "shared_cost", "voip",
               "personal_number", "pager", "uan", "voicemail")  # fmt: skip
COUNTRY_CODES = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}


class Rejected:
    """phonenumbers certainly refuses the reading; ``reason`` is normalize_number's."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


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
        # The common valid outcome in one regex, by length (module docstring).
        self.fast_international: dict[int, re.Pattern[str]] = {}
        self.fast_national: dict[int, re.Pattern[str]] = {}
        self.fast_with_code: dict[int, re.Pattern[str]] = {}
        # fast_national and fast_with_code as sources, ending at BATCH_END instead of
        # the end of the text: see FastNumberNormalizer.common_batch.
        self.batch_national: dict[int, str] = {}
        self.batch_with_code: dict[int, str] = {}
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
            for end in ("\\Z", BATCH_END):  # one number, then a number in a batch
                valid = f"{no_prefix}(?!0)(?=(?:{gen}){end})(?:{types}){end}"
                national = f"(?!{idd}){valid}"
                whole = n + len(self.cc)
                # Stripped for being too long, else for matching only without the code.
                kept = "" if self.length[whole] == Length.TOO_LONG else f"(?!(?:{gen}){end})"
                with_code = f"(?!{idd}){kept}{self.cc}{valid}" if whole <= MAX_DIGITS else None
                if end != BATCH_END:
                    self.fast_international[n] = re.compile(valid)
                    self.fast_national[n] = re.compile(national)
                    if with_code is not None:
                        self.fast_with_code[whole] = re.compile(with_code)
                else:
                    self.batch_national[n] = national
                    if with_code is not None:
                        self.batch_with_code[whole] = with_code

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
