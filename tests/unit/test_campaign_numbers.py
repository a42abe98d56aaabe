"""FastNumberNormalizer against normalize_number: the same answer for every input.

The inputs are generated (fixed seeds): phonenumbers' example numbers of each
type for each region, with random tails, in national and international forms,
with and without the country code, national and carrier prefixes, separators,
digits added or removed, other countries' numbers, and junk. Each must give
the same digits, or an InvalidInput with the same message.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import phonenumbers
import pytest

from connectus_worker.campaign.numbers import FastNumberNormalizer
from connectus_worker.domain.validation import InvalidInput, normalize_number

MAIN_REGIONS = ("CL", "MX", "PE", "AR", "CO", "BR", "US")
# Regions with other shapes: a national leading zero (IT), a code shared with
# other regions (CA, GB, RU, KZ), national prefixes (DE, FR, UY), ...
OTHER_REGIONS = ("IT", "CA", "GB", "RU", "KZ", "DE", "FR", "ES", "IN", "UY", "EC", "BO", "PY",
                 "CR", "GT", "AU", "NZ")  # fmt: skip
TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
         phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.PREMIUM_RATE,
         phonenumbers.PhoneNumberType.SHARED_COST, phonenumbers.PhoneNumberType.VOIP)  # fmt: skip
SEPARATED = ("{}", "{} ", " {}", "{}-{}", "({}) {}", "{}.{}", "{}/{}", "{} {} {}")
# Digits phonenumbers reads but normalize_number refuses.
ARABIC_INDIC = "56987654321".translate({ord(d): 0x0660 + int(d) for d in "0123456789"})
FULLWIDTH = "56987654321".translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
NATIONAL_PREFIXES = ("0", "1", "01", "015", "09", "15", "0 15", "021", "0 21", "90", "00", "011")


def answer(call: object, value: object) -> str:
    """The digits, or "InvalidInput: <message>"."""
    assert callable(call)
    try:
        return str(call(value))
    except InvalidInput as exc:
        return f"InvalidInput: {exc}"


def examples(region: str) -> list[str]:
    """National significant numbers of phonenumbers' examples for ``region``."""
    found = []
    for kind in TYPES:
        number = phonenumbers.example_number_for_type(region, kind)
        if number is not None:
            found.append(phonenumbers.national_significant_number(number))
    return found


def separated(rng: random.Random, digits: str) -> str:
    """``digits`` written with separators normalize_number removes."""
    shape = rng.choice(SEPARATED)
    holes = shape.count("{}")
    if holes == 1 or len(digits) < holes:
        return shape.replace("{}", digits, 1).replace("{}", "")
    cuts = sorted(rng.sample(range(1, len(digits)), holes - 1))
    parts = [digits[i:j] for i, j in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    return shape.format(*parts)


def variants(rng: random.Random, region: str, count: int) -> Iterator[object]:
    """``count`` inputs around ``region``'s numbers, valid and invalid."""
    cc = str(phonenumbers.country_code_for_region(region))
    bases = examples(region)
    other_codes = [str(phonenumbers.country_code_for_region(r)) for r in (*MAIN_REGIONS, "IT")]
    for _ in range(count):
        nsn = rng.choice(bases)
        keep = max(1, len(nsn) - rng.randint(1, 6))
        nsn = nsn[:keep] + "".join(rng.choice("0123456789") for _ in range(len(nsn) - keep))
        roll = rng.random()
        if roll < 0.15:  # wrong length
            nsn = nsn[: -rng.randint(1, 3)] if rng.random() < 0.5 else nsn + "1" * rng.randint(1, 3)
        elif roll < 0.25:  # a national or carrier prefix
            nsn = rng.choice(NATIONAL_PREFIXES).replace(" ", "") + nsn
        elif roll < 0.3:  # random digits
            nsn = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
        form = rng.random()
        code = cc if rng.random() < 0.8 else rng.choice(other_codes)
        if form < 0.3:
            text = nsn
        elif form < 0.55:
            text = code + nsn
        elif form < 0.8:
            text = "+" + code + nsn
        elif form < 0.9:
            text = "00" + code + nsn
        else:
            text = "+" + code + " " + separated(rng, nsn)
        if rng.random() < 0.3:
            text = separated(rng, text)
        yield text
    yield from ("", " ", "+", "00", "56", "+56", "5", "abc", "+56 9 8765 432a", "++56987654321",
                "+56\t987654321", ARABIC_INDIC, FULLWIDTH, "0", "000000000",
                "+0056987654321", "56-9-8765-4321-", "(+56) 9 8765 4321", "9" * 25)  # fmt: skip
    yield from (None, 56987654321, -5, 3.5, True, b"56987654321")


def mismatches(region: str, inputs: list[object]) -> tuple[list[str], FastNumberNormalizer]:
    fast = FastNumberNormalizer(region)
    found = []
    for value in inputs:
        expected = answer(lambda v: normalize_number(v, default_region=region), value)
        actual = answer(fast, value)
        if actual != expected:
            found.append(f"{region} {value!r}: fast {actual!r}, normalize_number {expected!r}")
    return found, fast


@pytest.mark.parametrize("region", MAIN_REGIONS)
def test_same_answers_as_normalize_number(region: str) -> None:
    inputs = list(variants(random.Random(f"campaign-numbers-{region}"), region, 1_500))
    found, fast = mismatches(region, inputs)
    assert found == [], "\n".join(found[:20])
    # Not vacuous: both outcomes occur often, and most answers came from the fast path.
    valid = sum(1 for v in inputs if not answer(fast, v).startswith("InvalidInput"))
    assert 0.25 * len(inputs) < valid < 0.85 * len(inputs)
    assert fast.slow < 0.3 * len(inputs)


@pytest.mark.parametrize("region", OTHER_REGIONS)
def test_same_answers_in_other_regions(region: str) -> None:
    inputs = list(variants(random.Random(f"campaign-numbers-{region}"), region, 300))
    found, _ = mismatches(region, inputs)
    assert found == [], "\n".join(found[:20])


def test_same_answers_for_an_unknown_default_region() -> None:
    found, fast = mismatches("XX", ["987654321", "+56987654321", "56987654321", "+1 415 555 2671"])
    assert found == []
    assert fast.slow == 2  # national readings need a region: left to normalize_number


def test_common_shapes_never_reach_normalize_number() -> None:
    fast = FastNumberNormalizer("CL")
    assert fast("56987654321") == "56987654321"
    assert fast("+56 9 8765 4321") == "56987654321"
    assert fast("987654321") == "56987654321"
    assert fast("0056987654321") == "56987654321"
    assert fast("(9) 8765-4321") == "56987654321"
    assert fast("+52 55 1234 5678") == "525512345678"  # another country, by its code
    assert fast("525512345678") == "525512345678"  # Connectus's own form, no '+'
    with pytest.raises(InvalidInput, match=r"^dst_number: is too short$"):
        fast("98765432")
    with pytest.raises(InvalidInput, match=r"^phone: is not a valid number for region CL$"):
        fast("56187654321", "phone")
    assert fast.slow == 0


def test_unusual_input_is_left_to_normalize_number() -> None:
    fast = FastNumberNormalizer("CL")
    with pytest.raises(InvalidInput, match="must be a string or an integer"):
        fast(None)
    assert fast(56987654321) == "56987654321"
    assert fast.slow == 2


@pytest.mark.parametrize("region", ["CL", "MX", "AR", "US", "IT", "CA"])
def test_common_batch_is_common_for_each(region: str) -> None:
    rng = random.Random(f"campaign-batch-{region}")
    texts = [v.strip() for v in variants(rng, region, 1_500) if isinstance(v, str)]
    fast = FastNumberNormalizer(region)
    # Mixed shapes, then runs of one shape (sorted by length), then a line feed inside.
    for batch in (texts, sorted(texts, key=len), [*texts[:50], "56987654321\n56987654322"]):
        expected = [fast.common(text) for text in batch]
        assert fast.common_batch(batch) == expected
    answered = [text for text in sorted(texts, key=len) if fast.common(text) is not None]
    assert fast.common_batch(answered) == [fast.common(text) for text in answered]
    for text in answered[:300]:
        assert fast.common(text) == normalize_number(text, default_region=region)
    if region in ("CL", "MX", "US"):  # where the common shapes are common: not vacuous
        assert len(answered) > 100
