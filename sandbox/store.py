"""Compact, columnar storage for messages and charges.

A million messages must fit in bounded memory, so a message is not an object:
it is an index into parallel ``array``/``bytearray`` columns (about 60 bytes a
message plus its content string). Provider ids are derived from the index:
a random 20-hex-digit prefix per table and run, then the index in 12 hex
digits, so an id is 32 hex characters like the documented ones and is parsed
back to its index in O(1) without any id → row dictionary.
"""

from __future__ import annotations

import os
from array import array
from typing import Final

# Platform statuses, stored as one byte each.
PROGRAMADO: Final = 0
EN_COLA: Final = 1
NUMERO_INVALIDO: Final = 2
ENVIADO_A_CARRIER: Final = 3
ESPERANDO_RESPUESTA: Final = 4
NO_ENTREGABLE: Final = 5
ENTREGADO: Final = 6
NUMERO_ENVIADO: Final = 7
STATUS_NAMES: Final = (
    "PROGRAMADO",
    "EN_COLA",
    "NUMERO_INVALIDO",
    "ENVIADO_A_CARRIER",
    "ESPERANDO_RESPUESTA",
    "NO_ENTREGABLE",
    "ENTREGADO",
    "NUMERO_ENVIADO",
)


def smpp_name(status: int) -> str:
    """v3 SMS status as SMPP: ``ESME_ROK`` until final, then ``DELIVRD`` / ``UNDELIV``."""
    if status == ENTREGADO:
        return "DELIVRD"
    if status in (NO_ENTREGABLE, NUMERO_INVALIDO):
        return "UNDELIV"
    return "ESME_ROK"


FLAG_OTP: Final = 1
FLAG_HASHED: Final = 2

_INDEX_DIGITS: Final = 12
_PREFIX_DIGITS: Final = 32 - _INDEX_DIGITS
_INTERN_MAX: Final = 4096


class MessageTable:
    """All messages of one product; row ``i`` is message ``i``.

    ``dst`` is stored as an unsigned 64-bit integer for phone products and as a
    string for e-mail. ``delivery`` / ``client`` are indexes into the state's
    delivery / client lists, ``-1`` for none.
    """

    __slots__ = (
        "_intern",
        "client",
        "content",
        "created",
        "delivery",
        "dst",
        "flags",
        "numeric_dst",
        "prefix",
        "product",
        "segments",
        "src",
        "status",
    )

    def __init__(self, product: str, *, numeric_dst: bool) -> None:
        self.product = product
        self.numeric_dst = numeric_dst
        # os.urandom, not the seeded RNG: ids must not repeat across sandbox restarts,
        # or a worker's records from an earlier run would collide with new ones.
        self.prefix = os.urandom(_PREFIX_DIGITS // 2).hex()
        self.status = bytearray()
        self.flags = bytearray()
        self.created = array("d")
        self.dst: array[int] | list[str] = array("Q") if numeric_dst else []
        self.src: list[object] = []
        self.content: list[str] = []
        self.delivery = array("i")
        self.client = array("i")
        self.segments = array("I")
        # Small intern cache: templated contents share one string object.
        self._intern: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.status)

    def append(
        self,
        *,
        dst: str,
        content: str,
        created: float,
        status: int,
        src: object = None,
        delivery: int = -1,
        client: int = -1,
        segments: int = 1,
        flags: int = 0,
    ) -> int:
        """Store one message and return its index. O(1) amortized."""
        cached = self._intern.get(content)
        if cached is None:
            if len(self._intern) >= _INTERN_MAX:
                self._intern.clear()
            self._intern[content] = content
        else:
            content = cached
        index = len(self.status)
        self.status.append(status)
        self.flags.append(flags)
        self.created.append(created)
        if self.numeric_dst:
            self.dst.append(int(dst))  # type: ignore[arg-type]
        else:
            self.dst.append(dst)  # type: ignore[arg-type]
        self.src.append(src)
        self.content.append(content)
        self.delivery.append(delivery)
        self.client.append(client)
        self.segments.append(segments)
        return index

    def id_of(self, index: int) -> str:
        return f"{self.prefix}{index:0{_INDEX_DIGITS}x}"

    def index_of(self, message_id: object) -> int | None:
        """Row of ``message_id``, ``None`` when it is not an id of this table."""
        if (
            not isinstance(message_id, str)
            or len(message_id) != 32
            or not message_id.startswith(self.prefix)
        ):
            return None
        try:
            index = int(message_id[_PREFIX_DIGITS:], 16)
        except ValueError:
            return None
        return index if index < len(self.status) else None

    def dst_of(self, index: int) -> str:
        return str(self.dst[index])


class Ledger:
    """Every charge, in order; ``charge_id`` is the row number (0-based).

    Rows point at the message (product code + row), so dst, client and delivery
    are not duplicated; the SHA-256 digest is kept raw (32 bytes a row).
    """

    __slots__ = ("at", "digests", "message", "product", "units")

    def __init__(self) -> None:
        self.product = bytearray()
        self.message = array("q")
        self.units = array("I")
        self.at = array("d")
        self.digests = bytearray()

    def __len__(self) -> int:
        return len(self.product)

    def record(self, product: int, message: int, units: int, at: float, digest: bytes) -> int:
        charge_id = len(self.product)
        self.product.append(product)
        self.message.append(message)
        self.units.append(units)
        self.at.append(at)
        self.digests += digest
        return charge_id

    def digest_hex(self, charge_id: int) -> str:
        start = charge_id * 32
        return self.digests[start : start + 32].hex()
