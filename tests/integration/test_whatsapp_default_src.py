"""CONNECTUS_WHATSAPP_SRC_NUMBER: a WhatsApp send naming no origin reaches the sandbox from it."""

from __future__ import annotations

from collections.abc import Callable

from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.waiting import wait_for

ORIGIN = "56999944837"
DST = "56987654321"


def test_a_whatsapp_send_without_src_number_uses_the_setting(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(env={"CONNECTUS_WHATSAPP_SRC_NUMBER": ORIGIN})
    producer = Producer(stack.settings)
    job_id = producer.send_whatsapp(DST, "Hola sin origen")
    record = wait_for(
        lambda: r if (r := producer.get_status(job_id)).state is State.SENT else None,
        timeout_s=30, what="the WhatsApp job sent",
    )  # fmt: skip
    assert record.state is State.SENT
    with stack.sandbox_client() as client:
        listing = client.get(
            "/api_v3/whatsapp/messages",
            params={"src_number": ORIGIN, "dst_number": DST},
            auth=(stack.settings.connectus_api_user or "", _key(stack)),
        )
    listing.raise_for_status()
    messages = listing.json()["messages"]
    assert [m["whatsapp_content"] for m in messages] == ["Hola sin origen"]
    assert messages[0]["src_number"] == ORIGIN


def _key(stack: LocalStack) -> str:
    key = stack.settings.connectus_api_key
    return key.get_secret_value() if key is not None else ""
