"""Operators of the console (``CONSOLE_USERS``) and their password hashes.

``CONSOLE_USERS`` is ``name:role:hash;...``; a hash is made by ``connectus
console-password``: ``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>`` (Django's
format, so other tools can make one). Fewer than :data:`MIN_ITERATIONS` iterations
are refused: a leaked setting must not be cheap to brute-force. In a docker-compose
file write each ``$`` as ``$$``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "read-only"]
ROLES: tuple[Role, ...] = ("admin", "read-only")
ALGORITHM = "pbkdf2_sha256"
#: What ``connectus console-password`` uses (OWASP's 2023 figure for PBKDF2-SHA256).
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 100_000
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_HASH = re.compile(r"^pbkdf2_sha256\$(\d{1,9})\$([0-9a-f]{16,128})\$([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role
    password_hash: str

    @property
    def can_act(self) -> bool:
        """Whether this operator may change state (pause, replay, purge...)."""
        return self.role == "admin"


def parse_users(text: str) -> dict[str, Operator]:
    """{name: operator}; ``ValueError`` naming the entry's position and what is wrong."""
    users: dict[str, Operator] = {}
    for position, entry in enumerate((e.strip() for e in text.split(";")), start=1):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"entry #{position} must be name:role:hash")
        name, role, password_hash = (p.strip() for p in parts)
        if not _NAME.match(name):
            raise ValueError(f"entry #{position}: the name must be 1-64 of A-Z a-z 0-9 . _ @ -")
        if role not in ROLES:
            raise ValueError(f"entry #{position}: the role must be admin or read-only")
        match = _HASH.match(password_hash)
        if not match:
            raise ValueError(
                f"entry #{position}: the hash must be pbkdf2_sha256$<iterations>$<salt hex>"
                "$<digest hex> (make one with `connectus console-password`)"
            )
        if int(match.group(1)) < MIN_ITERATIONS:
            raise ValueError(f"entry #{position}: the hash needs >= {MIN_ITERATIONS} iterations")
        if name in users:
            raise ValueError(f"entry #{position}: the name {name!r} is given twice")
        users[name] = Operator(name, role, password_hash)
    if not users:
        raise ValueError("names no operator (name:role:hash;...)")
    return users


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A new hash of ``password`` with a random salt."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{ALGORITHM}${iterations}${salt}${digest.hex()}"


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (constant-time comparison)."""
    match = _HASH.match(password_hash)
    if not match:
        return False
    iterations, salt, expected = int(match.group(1)), match.group(2), match.group(3)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return hmac.compare_digest(digest.hex(), expected)
