"""A real worker process applies a status webhook that came before its send was recorded.

The service keeps such a status pending (no provider index yet); here the
webhook is recorded with the service's recorder on the real Redis, then a
real send goes through the worker and the sandbox, and the worker's
housekeeper applies the pending status once the send's provider id is known.
"""

from __future__ import annotations

from connectus_worker.ledger.jobs import epoch_ms
from connectus_worker.producers.api import Producer
from connectus_worker.service.events import EventRecorder
from devtools.stack import LocalStack
from tests.support.waiting import wait_for


def test_the_worker_applies_a_status_that_came_before_the_send(
    stack: LocalStack, producer: Producer
) -> None:
    store = producer.store
    job_id = producer.send_sms("56987654321", "hola")
    record = wait_for(lambda: (r := producer.get_status(job_id)) and r.provider_id and r,
                      timeout_s=30, what="the send")  # fmt: skip
    provider_id = str(record.provider_id)
    # Replay what a webhook racing ahead of the finish leaves: a pending status.
    # (The index is removed for the recorder's look-up, then restored as the
    # worker's finish had written it.)
    index = store.client.get(store.keys.provider(provider_id))
    store.client.delete(store.keys.provider(provider_id))
    recorder = EventRecorder(store.client, store.keys, seen_ttl_s=3600, maxlen=1000, hash_key=b"k")
    recorder.sms_status(id_sms=provider_id, status="ENTREGADO", job_id=None,
                        now_ms=epoch_ms(), request_id="r")  # fmt: skip
    assert store.client.hexists(store.keys.status_pending, provider_id)
    store.client.set(store.keys.provider(provider_id), index)

    key = store.keys.job(job_id)
    wait_for(lambda: store.client.hget(key, "delivery_status") == b"ENTREGADO",
             timeout_s=15, what="the pending status applied by the housekeeper")  # fmt: skip
    assert not store.client.hexists(store.keys.status_pending, provider_id)
