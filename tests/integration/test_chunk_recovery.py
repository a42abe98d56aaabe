"""A rolling update: a v1 bulk chunk dead-lettered by an older worker is still sent, once.

This version's pump releases a chunk without making its records (its first
claim makes them) and says so in the chunk's message. A worker older than
that expects exactly one argument and dead-letters the message as malformed,
instead of finding no records and skipping the chunk for good. Here the
older worker's part is played by hand, with the same quarantine, on a real
Redis; then real worker processes of this version start, put the chunk
back at their first maintenance pass, and the campaign finishes with every
recipient charged exactly once by the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from dramatiq import Message

from connectus_worker.campaign.model import CampaignState
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.worker.campaigns import CampaignPump
from devtools.stack import LocalStack
from tests.support.stack_checks import CAMPAIGN_ENV, campaign_tools, charged_per_dst, numbers
from tests.support.waiting import wait_for


def test_a_chunk_dead_lettered_by_an_older_worker_is_sent_once(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack(env=CAMPAIGN_ENV, start_workers=False)
    producer, control = campaign_tools(stack)
    dsts = numbers(1_500, start=60_000)
    options = CampaignOptions(name="upgrade", text="Hola {name}")
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    store, queue = control.store, stack.settings.queue_bulk
    campaign = store.get(cid)
    assert campaign is not None
    pump = CampaignPump(store=store, queue=queue, max_pending=10_000, owner="this-version")
    assert pump.step(campaign) == 2  # both chunks released, no record made yet

    # An older worker takes chunk 0 and dead-letters it (its actor's check, its quarantine).
    client, keys = producer.redis, store.keys
    redis_id = client.lpop(keys.queue(queue))
    message = Message.decode(client.hget(keys.queue_messages(queue), redis_id))  # type: ignore[arg-type]
    client.hdel(keys.queue_messages(queue), redis_id)  # type: ignore[arg-type]
    assert message.kwargs["chunk"] == {"campaign": cid, "chunk": 0}
    assert set(message.kwargs) != {"chunk"}  # what makes the older check refuse it
    kept = {"actor": message.actor_name, "args": list(message.args), "kwargs": message.kwargs}
    jobs = JobStore(client, keys, ttl_s=stack.settings.job_ttl_s)
    jobs.quarantine(json.dumps(kept).encode(), "malformed job: expected exactly one keyword "
                    "argument, 'chunk'")  # fmt: skip

    stack.start_worker_supervisor()
    wait_for(lambda: control.get(cid).state is CampaignState.FINISHED, timeout_s=120,
             what="the campaign to finish")  # fmt: skip
    charges = charged_per_dst(stack)
    assert set(charges) == set(dsts) and set(charges.values()) == {1}
    assert client.zcard(keys.dead_letters) == 0
    assert control.status(cid).counts == {"sent": 1_500}
