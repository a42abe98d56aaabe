"""Connectus's country ids (``GET /api_v3/clients``), from a phone number's calling code.

A subclient's SMS balance is per destination country: a number whose calling code is
none of these can't be charged to one.
"""

from __future__ import annotations

#: Calling code → Connectus ``id_country`` (longest codes are tried first).
CALLING_CODES: dict[str, int] = {
    "593": 4,  # Ecuador
    "506": 10,  # Costa Rica
    "598": 12,  # Uruguay
    "595": 13,  # Paraguay
    "591": 14,  # Bolivia
    "502": 15,  # Guatemala
    "56": 1,  # Chile
    "52": 2,  # Mexico
    "51": 3,  # Peru
    "57": 6,  # Colombia
    "54": 7,  # Argentina
    "55": 8,  # Brasil
    "1": 5,  # Estados Unidos
}

#: Why a number can't be charged to a subclient (``id_client``).
NO_SUBCLIENT_COUNTRY = (
    "in none of Connectus's countries, so it can't be charged to a subclient (id_client): "
    "SMS balance is per destination country"
)


def connectus_country(number: str) -> int | None:
    """``id_country`` of a number in E.164 digits (a leading '+' is tolerated); None if
    its calling code is none of Connectus's countries."""
    digits = number.strip().removeprefix("+")
    for length in (3, 2, 1):
        country = CALLING_CODES.get(digits[:length])
        if country is not None:
            return country
    return None
