"""What a pause covers: the scopes of the circuit breaker, and which one an error opens.

Scopes: ``account``, ``host:v3|v1|qr``, ``product:<p>``, ``balance:sms:<CC>[@id]`` or
``balance:<p>[@id]``, ``qr_session``; a message is held back only while a scope that
covers it is open (docs/errors.md, "Pauses and what they cover"). A send's host and
product come from its kind (:data:`domain.models.KINDS`), an SMS's balance from its
destination's calling code, and a send with ``id_client`` draws on that subclient's.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers

from connectus_worker.domain.models import Kind
from connectus_worker.worker.policy import decide

ACCOUNT = "account"
#: The WhatsApp QR API's paired session: while it is not connected no QR send can go.
QR_SESSION = "qr_session"
QR_HOST = "qr"
HOSTS = ("v3", "v1", "qr")
UNKNOWN_COUNTRY = "ZZ"

Effect = Literal["trip", "failure", "answered", "ignored"]


@dataclass(frozen=True, slots=True)
class Target:
    """What one send touches: its API ``host``, its ``product``, the balance it draws on
    (``dst``'s country for SMS, or ``country`` when known without a number; ``client``:
    the paying subclient, if any)."""

    host: str
    product: str
    dst: str | None = None
    country: str | None = None
    client: str | None = None

    @property
    def host_scope(self) -> str:
        return f"host:{self.host}"

    @property
    def product_scope(self) -> str:
        return f"product:{self.product}"

    @property
    def balance_scope(self) -> str:
        """The balance this send draws on (SMS: per destination country)."""
        scope = f"balance:{self.product}"
        if self.product == "sms":
            scope += f":{self.country or country_of(self.dst)}"
        return scope + (f"@{self.client}" if self.client else "")

    def covered_by(self, scope: str) -> bool:
        """Whether a pause of ``scope`` holds this send back."""
        if scope == ACCOUNT:
            return True
        if scope == QR_SESSION:
            return self.host == QR_HOST
        if scope.startswith("balance:"):
            if not scope.startswith(f"balance:{self.product}"):
                return False  # decided without parsing the number
            return scope == self.balance_scope
        return scope in (self.host_scope, self.product_scope)


def target_for(kind: Kind, payload: Mapping[str, Any]) -> Target:
    """The target of a single send of ``kind`` with ``payload`` (the producer's fields)."""
    host, product = kind.spec.host, kind.spec.product
    dst = payload.get("dst_number") if product == "sms" else None
    client = payload.get("id_client")
    return Target(host, product, dst=str(dst) if dst else None,
                  client=str(client) if client else None)  # fmt: skip


#: A v1 ``send_sms_bulk`` call: Chilean mobiles only (the v1 document), no subclient.
V1_BULK = Target("v1", "sms", country="CL")


@functools.lru_cache(maxsize=4096)
def country_of(number: str | None) -> str:
    """ISO region of a number's calling code (``56987654321`` → ``CL``), ``ZZ`` if none:
    Connectus keeps one SMS balance per country of calling code (+1 is one country)."""
    if not number:
        return UNKNOWN_COUNTRY
    digits = number.strip().lstrip("+")
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return UNKNOWN_COUNTRY
    region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    return region if region and region != UNKNOWN_COUNTRY else UNKNOWN_COUNTRY


def effect(exc: BaseException, target: Target) -> tuple[Effect, str]:
    """What an error means for the breaker, and the scope it is about: ``trip`` (open it
    now), ``failure`` (one more in the host's streak), ``answered`` (ends the host's
    streak) or ``ignored`` (a bug of ours says nothing about Connectus)."""
    decision = decide(exc)
    if decision.breaker_ignores:
        return "ignored", ""
    if decision.pause == "balance":
        return "trip", target.balance_scope
    if decision.pause == "product":
        return "trip", target.product_scope
    if decision.pause == "qr_session":
        # Only the QR API has a paired session; the same words from another
        # host say nothing about it (that host answered).
        return ("trip", QR_SESSION) if target.host == QR_HOST else ("answered", target.host_scope)
    if decision.pause == "account":  # AuthenticationFailed, OperatorLoginFailed
        return "trip", ACCOUNT
    if decision.host_failure:
        return "failure", target.host_scope
    return "answered", target.host_scope
