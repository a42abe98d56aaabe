"""Tenants: who owns a job, a campaign and an idempotency key.

Every intake token belongs to one tenant (``INTAKE_TENANTS``: ``name:token,token;
name:token``; ``INTAKE_TOKENS`` are :data:`DEFAULT_TENANT`'s), and every Python
producer names its own. Another tenant's job or campaign does not exist for a caller,
and one idempotency key used by two tenants makes two jobs. A name has no ``:``, so a
key ``…:<tenant>:<user key>`` splits one way only (:mod:`ledger.keys`).
"""

from __future__ import annotations

import re

#: The tenant of ``INTAKE_TOKENS``, of producers that name none, and of records
#: written before tenants existed (they have no ``tenant`` field).
DEFAULT_TENANT = "default"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_TENANT = re.compile(TENANT_PATTERN)


def tenant_problem(name: object) -> str | None:
    """Why ``name`` is not a valid tenant name, or None if it is."""
    if not isinstance(name, str):
        return "must be a string"
    if not _TENANT.match(name):
        return "must be 1-64 of a-z 0-9 _ - starting with a letter or digit"
    return None


def parse_tenants(text: str) -> dict[str, tuple[str, ...]]:
    """``name:tok,tok;name:tok`` as {tenant: tokens}; ``ValueError`` with a reason that
    names the position or the tenant, never a token. Token shape is checked by the caller."""
    tenants: dict[str, tuple[str, ...]] = {}
    for position, entry in enumerate(text.split(";"), start=1):
        if not entry.strip():
            continue  # a trailing ';'
        name, colon, tokens = entry.partition(":")
        name = name.strip()
        if not colon:
            raise ValueError(f"entry #{position} must be tenant:token[,token...]")
        problem = tenant_problem(name)
        if problem is not None:
            raise ValueError(f"entry #{position}: the tenant name {problem}")
        if name in tenants:
            raise ValueError(f"tenant {name!r} is named twice")
        values = tuple(token.strip() for token in tokens.split(","))
        if not all(values):
            raise ValueError(f"tenant {name!r} has an empty token")
        tenants[name] = values
    return tenants
