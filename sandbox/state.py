"""The in-memory Connectus: balances, messages, deliveries, the ledger, the scheduler.

Time comes from an injected ``clock`` (epoch seconds), so tests move time by
hand and call :meth:`SandboxState.tick` instead of sleeping. Status progression
is one heap of ``(due_s, key)`` entries processed by ``tick`` (the app runs one
loop that calls it), never a task per message. Every update is O(1) (O(log n)
for the heap).
"""

from __future__ import annotations

import heapq
import os
import random
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

from sandbox.charging import PRODUCT_SMS, Balances, sha256_hex
from sandbox.config import SandboxConfig
from sandbox.directory import ClientBook, Delivery, DeliveryBook, ShortLinks
from sandbox.errors import ApiError, bad_request
from sandbox.store import (
    EN_COLA,
    ENTREGADO,
    ENVIADO_A_CARRIER,
    NO_ENTREGABLE,
    NUMERO_ENVIADO,
    PROGRAMADO,
    STATUS_NAMES,
    Ledger,
    MessageTable,
)
from sandbox.timefmt import AccountTime

Clock = Callable[[], float]
Notify = Callable[[str, dict[str, Any]], None]

SMS, EMAIL, WHATSAPP, QR = 0, 1, 2, 3
TABLE_PRODUCTS = ("sms", "email", "whatsapp", "whatsapp_qr")
_DELIVERY_FIRE, _EMAIL_OPEN, _EMAIL_CLICK = 4, 5, 6
SHIFT = 40
MASK = (1 << SHIFT) - 1
# Which delivery id_product a message may join. The documents disagree on 2/3
# (Email and WhatsApp sections say 2 and 3; the Delivery section the reverse),
# so both are accepted for those two products.
_DELIVERY_OK = {SMS: (1,), EMAIL: (2, 3), WHATSAPP: (2, 3)}
_DEFAULT_PRODUCT = {SMS: 1, WHATSAPP: 2, EMAIL: 3}
QR_HISTORY = 50
#: The QR session's statuses (GET /status); only CONNECTED can send.
QR_CONNECTED, QR_DISCONNECTED = "CONNECTED", "DISCONNECTED"
QR_STATUSES = (QR_CONNECTED, QR_DISCONNECTED)


class SandboxState:
    """All mutable state of one sandbox; ``reset()`` returns it to the config."""

    def __init__(self, config: SandboxConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.time = AccountTime(config.time_zone)
        self.notify: Notify | None = None
        self.reset()

    def reset(self) -> None:
        cfg = self.config
        self.rng = random.Random(cfg.seed)
        self.account = _account(cfg)
        self.free = Balances(dict(cfg.sms_balances), cfg.email_balance, cfg.whatsapp_balance)
        self.clients = ClientBook()
        self.deliveries = DeliveryBook()
        self.short_links = ShortLinks()
        self.tables = (
            MessageTable("sms", numeric_dst=True),
            MessageTable("email", numeric_dst=False),
            MessageTable("whatsapp", numeric_dst=True),
            MessageTable("whatsapp_qr", numeric_dst=False),
        )
        self.ledger = Ledger()
        self.heap: list[tuple[float, int]] = []
        self.email_events: dict[int, list[tuple[str, float]]] = {}
        self.by_dst: dict[int, array[int]] = {}  # WhatsApp dst -> rows, for the messages lookup
        self.qr_by_number: dict[str, deque[int]] = {}
        self.qr_groups: dict[str, dict[str, Any]] = {}
        # The QR API's paired session (GET /status); PUT /_sandbox/qr_session switches it.
        self.qr_status = QR_CONNECTED
        now = self.clock()
        self.default_delivery: dict[int, Delivery] = {}
        for table_no, product in _DEFAULT_PRODUCT.items():
            delivery = self.deliveries.create("default", self.time.format(now), now, product)
            delivery.executed = True
            self.default_delivery[table_no] = delivery

    # --- sending -----------------------------------------------------------

    def resolve_delivery(self, id_delivery: object, table_no: int) -> Delivery:
        if id_delivery in (None, ""):
            return self.default_delivery[table_no]
        delivery = self.deliveries.get(id_delivery)
        if delivery is None:
            raise bad_request("id_delivery", "Unknown delivery")
        if delivery.executed:
            raise bad_request("id_delivery", "Delivery already executed")
        if delivery.id_product not in _DELIVERY_OK[table_no]:
            raise bad_request("id_delivery", "Delivery is for another product")
        return delivery

    def accept(
        self,
        table_no: int,
        *,
        dst: str,
        content: str,
        units: int,
        segments: int = 1,
        country: int | None = None,
        src: object = None,
        id_client: object = None,
        id_delivery: object = None,
        delivery: Delivery | None = None,
        flags: int = 0,
        digest: bytes | None = None,
    ) -> int:
        """Validate references, charge, store and schedule one message; return its row.

        Raises :class:`ApiError` (400 unknown/executed reference, 402 balance) before
        anything is charged.
        """
        client = self.clients.resolve(id_client)
        if delivery is None:
            delivery = self.resolve_delivery(id_delivery, table_no)
        product = TABLE_PRODUCTS[table_no]
        owner = client.balances if client is not None else self.free
        if not owner.try_charge(product, units, country):
            extra: dict[str, Any] = {"product": product}
            if product == PRODUCT_SMS:
                extra["id_country"] = country
            raise ApiError(402, "Insufficient balance", extra=extra)
        now = self.clock()
        pending = not delivery.executed
        status = PROGRAMADO if pending else EN_COLA
        table = self.tables[table_no]
        row = table.append(
            dst=dst,
            content=content,
            created=now,
            status=status,
            src=src,
            delivery=delivery.index,
            client=-1 if client is None else client.id - 1,
            segments=segments,
            flags=flags,
        )
        key = table_no << SHIFT | row
        delivery.members.append(key)
        if digest is None:
            digest = bytes.fromhex(sha256_hex(content))
        self.ledger.record(table_no, row, units, now, digest)
        if not pending:
            heapq.heappush(self.heap, (now + self.config.step_delay_s, key))
        if table_no == SMS:
            self._notify_status(row, status)
        elif table_no == WHATSAPP:
            rows = self.by_dst.get(int(dst))
            if rows is None:
                rows = self.by_dst[int(dst)] = array("I")
            rows.append(row)
        return row

    def record_qr(self, number: str, message: str, *, from_me: bool = True) -> int:
        """Store a WhatsApp-QR message; sent ones are recorded in the ledger (no balance)."""
        now = self.clock()
        row = self.tables[QR].append(
            dst=number, content=message, created=now, status=ENTREGADO, flags=int(from_me)
        )
        history = self.qr_by_number.get(number)
        if history is None:
            history = self.qr_by_number[number] = deque(maxlen=QR_HISTORY)
        history.append(row)
        if from_me:
            self.ledger.record(QR, row, 1, now, bytes.fromhex(sha256_hex(message)))
        return row

    # --- deliveries --------------------------------------------------------

    def schedule_delivery(self, delivery: Delivery) -> None:
        heapq.heappush(self.heap, (delivery.due, _DELIVERY_FIRE << SHIFT | delivery.index))
        # A deliver_at in the past executes at once, as a scheduler would.
        self.tick(self.clock())

    # --- the scheduler -----------------------------------------------------

    def next_due(self) -> float | None:
        return self.heap[0][0] if self.heap else None

    def tick(self, now: float) -> int:
        """Apply every status step due at or before ``now`` (epoch s); return how many."""
        heap = self.heap
        step = self.config.step_delay_s
        done = 0
        while heap and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            kind, row = key >> SHIFT, key & MASK
            done += 1
            if kind == _DELIVERY_FIRE:
                self._fire_delivery(row, due)
            elif kind >= _EMAIL_OPEN:
                self._email_event(kind, row, due)
            else:
                self._step(kind, row, due, step)
        return done

    def _step(self, table_no: int, row: int, due: float, step: float) -> None:
        table = self.tables[table_no]
        current = table.status[row]
        if current == EN_COLA:
            new = NUMERO_ENVIADO if table_no == EMAIL else ENVIADO_A_CARRIER
            heapq.heappush(self.heap, (due + step, table_no << SHIFT | row))
        elif current in (ENVIADO_A_CARRIER, NUMERO_ENVIADO):
            undeliverable = self.rng.random() < self.config.undeliverable_rate
            new = NO_ENTREGABLE if undeliverable else ENTREGADO
            opened = table_no == EMAIL and not undeliverable
            if opened and self.rng.random() < self.config.email_open_rate:
                heapq.heappush(self.heap, (due + step, _EMAIL_OPEN << SHIFT | row))
        else:
            return
        table.status[row] = new
        if table_no == SMS:
            self._notify_status(row, new)

    def _fire_delivery(self, index: int, due: float) -> None:
        delivery = self.deliveries.deliveries[index]
        if delivery.executed or delivery.due != due:
            return  # rescheduled by a PATCH: a newer heap entry carries the new time
        delivery.executed = True
        step = self.config.step_delay_s
        for key in delivery.members:
            table_no, row = key >> SHIFT, key & MASK
            table = self.tables[table_no]
            if table.status[row] == PROGRAMADO:
                table.status[row] = EN_COLA
                heapq.heappush(self.heap, (due + step, key))
                if table_no == SMS:
                    self._notify_status(row, EN_COLA)

    def _email_event(self, kind: int, row: int, due: float) -> None:
        event = "ABIERTO" if kind == _EMAIL_OPEN else "CLICKEADO"
        self.email_events.setdefault(row, []).append((event, due))
        if kind == _EMAIL_OPEN and self.rng.random() < self.config.email_click_rate:
            heapq.heappush(self.heap, (due + self.config.step_delay_s, _EMAIL_CLICK << SHIFT | row))

    # --- webhooks ----------------------------------------------------------

    def _notify_status(self, row: int, status: int) -> None:
        url = self.account["sms_status_hook_url"]
        if url and self.notify is not None:
            payload = {"id_sms": self.tables[SMS].id_of(row), "status": STATUS_NAMES[status]}
            self.notify(url, payload)

    def incoming_sms(self, src: str, dst: str, content: str, provider: str) -> tuple[str, bool]:
        """Simulate an SMS received on the account's number; ``(id_sms, queued)``."""
        id_sms = os.urandom(16).hex()  # not the seeded RNG: keeps status draws reproducible
        url = self.account["sms_incoming_hook_url"]
        if not url or self.notify is None:
            return id_sms, False
        payload = {
            "id_sms": id_sms,
            "dst_number": dst,
            "src_number": src,
            "src_provider": provider,
            "sms_content": content,
            "sms_content_binary": content.encode("utf-8").hex(),
        }
        self.notify(url, payload)
        return id_sms, True


def _account(cfg: SandboxConfig) -> dict[str, Any]:
    """The account object, shaped like the collection's example."""
    return {
        "id_account": cfg.api_user,
        "name": "Sandbox SpA",
        "country": "Chile",
        "phone": 56990000000,
        "email": "sandbox@example.cl",
        "sms_status_hook_url": cfg.sms_status_hook_url,
        "sms_incoming_hook_url": cfg.sms_incoming_hook_url,
        "purchases": [],
        "users": [
            {
                "name": "Sandbox Admin",
                "type": "ADMIN",
                "phone": 56990000000,
                "email": "sandbox@example.cl",
                "banned": False,
            },
        ],
        "src_numbers": [{"src_number": 56442340006, "is_default": True, "country": "Chile"}],
        "src_emails": [
            {"src_email": "sandbox@example.cl", "is_default": True, "is_verified": True}
        ],
    }
