"""What a message costs and which balance pays for it.

- SMS: 160 UTF-8 characters (code points) = 1 segment; longer content is charged
  ``ceil(len / 160)`` segments. An OTP costs ``otp_units_per_segment`` units per
  segment (the collection only says "higher than regular"; 2 is the sandbox's choice).
- E-mail and WhatsApp: 1 unit per message ("homogeneous costs").
- SMS balances are per destination country (country ids from the collection);
  e-mail and WhatsApp balances are single numbers. A send with ``id_client``
  draws on that subclient's balance, otherwise on the unassigned (free) balance.
"""

from __future__ import annotations

import hashlib

SEGMENT_CHARS = 160

PRODUCT_SMS = "sms"
PRODUCT_EMAIL = "email"
PRODUCT_WHATSAPP = "whatsapp"
PRODUCT_WHATSAPP_QR = "whatsapp_qr"
PRODUCTS = (PRODUCT_SMS, PRODUCT_EMAIL, PRODUCT_WHATSAPP)

# Subclient balance calls number products 1 SMS, 2 Email, 3 WhatsApp (their own description).
CLIENT_PRODUCT_NUMBERS = {1: PRODUCT_SMS, 2: PRODUCT_EMAIL, 3: PRODUCT_WHATSAPP}

COUNTRY_NAMES: dict[int, str] = {
    1: "Chile",
    2: "Mexico",
    3: "Peru",
    4: "Ecuador",
    5: "Estados Unidos",
    6: "Colombia",
    7: "Argentina",
    8: "Brasil",
    10: "Costa Rica",
    12: "Uruguay",
    13: "Paraguay",
    14: "Bolivia",
    15: "Guatemala",
}

# E.164 calling codes of those countries; three-digit codes are tried first.
_CALLING_CODES: dict[str, int] = {
    "593": 4,
    "506": 10,
    "598": 12,
    "595": 13,
    "591": 14,
    "502": 15,
    "56": 1,
    "52": 2,
    "51": 3,
    "57": 6,
    "54": 7,
    "55": 8,
    "1": 5,
}


def normalize_number(value: object) -> str | None:
    """Digits of a phone number given as int or string (``+`` and spaces allowed).

    ``None`` when it is not 8 to 15 digits: not a number in international format.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "").removeprefix("+")
    else:
        return None
    if not text.isascii() or not text.isdigit() or not 8 <= len(text) <= 15:
        return None
    return text


def country_of(number: str) -> int | None:
    """Country id of a normalized number, ``None`` when no balance country matches."""
    for length in (3, 2, 1):
        country = _CALLING_CODES.get(number[:length])
        if country is not None:
            return country
    return None


def is_v1_number(number: str) -> bool:
    """v1 accepts only an 11-digit Chilean mobile, ``569…``."""
    return len(number) == 11 and number.startswith("569")


def segments_of(content: str) -> int:
    """Segments charged for ``content``: ``ceil(len / 160)``, at least 1."""
    return max(1, -(-len(content) // SEGMENT_CHARS))


def sha256_hex(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


class Balances:
    """Balances of one owner (the unassigned account pool, or one subclient).

    Plain dict/int updates: O(1) per charge.
    """

    __slots__ = ("email", "sms", "whatsapp")

    def __init__(self, sms: dict[int, int] | None = None, email: int = 0, whatsapp: int = 0):
        self.sms: dict[int, int] = dict.fromkeys(COUNTRY_NAMES, 0)
        if sms:
            self.sms.update(sms)
        self.email = email
        self.whatsapp = whatsapp

    def get(self, product: str, country: int | None = None) -> int:
        if product == PRODUCT_SMS:
            return self.sms.get(country or 0, 0)
        return self.email if product == PRODUCT_EMAIL else self.whatsapp

    def add(self, product: str, amount: int, country: int | None = None) -> None:
        """Add ``amount`` (may be negative); the caller checks it stays >= 0."""
        if product == PRODUCT_SMS:
            key = country or 0
            self.sms[key] = self.sms.get(key, 0) + amount
        elif product == PRODUCT_EMAIL:
            self.email += amount
        else:
            self.whatsapp += amount

    def set(self, product: str, amount: int, country: int | None = None) -> None:
        self.add(product, amount - self.get(product, country), country)

    def try_charge(self, product: str, units: int, country: int | None = None) -> bool:
        """Take ``units`` if there are enough; ``False`` (and nothing taken) otherwise."""
        if self.get(product, country) < units:
            return False
        self.add(product, -units, country)
        return True

    def sms_list(self) -> list[dict[str, object]]:
        return [
            {"id_country": cid, "country_name": COUNTRY_NAMES.get(cid, str(cid)), "balance": bal}
            for cid, bal in sorted(self.sms.items())
        ]
