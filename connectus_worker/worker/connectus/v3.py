"""``client.v3``: the current API at ``CONNECTUS_BASE_URL`` + ``/api_v3``."""

from __future__ import annotations

from connectus_worker.worker.connectus.transport import Transport
from connectus_worker.worker.connectus.v3_account import AccountCalls
from connectus_worker.worker.connectus.v3_messages import MessageCalls


class V3Api(MessageCalls, AccountCalls):
    """SMS, e-mail, WhatsApp, deliveries, subclients, short links, account.

    Paths and bodies follow docs/connectus-api.md; all bodies are JSON.
    """

    def __init__(self, transport: Transport, base_url: str) -> None:
        super().__init__(transport, base_url, "/api_v3")
