"""JSON shapes of stored messages, shared by v3, v1 and the admin API."""

from __future__ import annotations

from typing import Any

from sandbox.state import SMS, WHATSAPP, SandboxState
from sandbox.store import STATUS_NAMES, smpp_name


def sms_record(state: SandboxState, row: int) -> dict[str, Any]:
    """``SmsRecord`` of docs/connectus-api.md (OTP hashed: content is the SHA-256 hex)."""
    table = state.tables[SMS]
    status = table.status[row]
    client = table.client[row]
    src = table.src[row]
    return {
        "id": table.id_of(row),
        "dst_number": table.dst_of(row),
        "src_number": None if src is None else str(src),
        "sms_content": table.content[row],
        "status": smpp_name(status),
        "platform_status": STATUS_NAMES[status],
        "id_delivery": state.deliveries.deliveries[table.delivery[row]].id,
        "id_client": None if client < 0 else state.clients.clients[client].id_unique,
        "segments": table.segments[row],
        "created_at": state.time.format(table.created[row]),
    }


def email_events(state: SandboxState, row: int) -> list[dict[str, str]]:
    return [
        {"event": event, "timestamp": state.time.format(at)}
        for event, at in state.email_events.get(row, ())
    ]


def whatsapp_record(state: SandboxState, row: int) -> dict[str, Any]:
    table = state.tables[WHATSAPP]
    src = table.src[row]
    return {
        "message_id": table.id_of(row),
        "src_number": None if src is None else str(src),
        "dst_number": table.dst_of(row),
        "whatsapp_content": table.content[row],
        "status": STATUS_NAMES[table.status[row]],
        "created_at": state.time.format(table.created[row]),
    }


def charge_record(state: SandboxState, charge_id: int) -> dict[str, Any]:
    """One ledger row: ``{charge_id, product, provider_id, dst, units, content_sha256,
    id_client, id_delivery, at}`` with ``at`` in epoch seconds."""
    ledger = state.ledger
    table_no = ledger.product[charge_id]
    row = ledger.message[charge_id]
    table = state.tables[table_no]
    client = table.client[row]
    delivery = table.delivery[row]
    return {
        "charge_id": charge_id,
        "product": table.product,
        "provider_id": table.id_of(row),
        "dst": table.dst_of(row),
        "units": ledger.units[charge_id],
        "content_sha256": ledger.digest_hex(charge_id),
        "id_client": None if client < 0 else state.clients.clients[client].id_unique,
        "id_delivery": None if delivery < 0 else state.deliveries.deliveries[delivery].id,
        "at": ledger.at[charge_id],
    }
