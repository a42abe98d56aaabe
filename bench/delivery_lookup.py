"""Lookup cost: one ``delivery_info`` of a campaign chunk against one ``date_report`` of the day.

Same run, same sandbox (in process, loopback HTTP), the real client: a day with
``N`` SMS of which one 200-message delivery is the campaign chunk. Reconciliation
and provider-id lookups read one of the two per pass (``worker/reconcile.py``);
this is the figure issue 20 §3 asks for before v3 campaigns use deliveries
(docs/campaigns.md). Run: ``python -m bench.delivery_lookup [N ...]``.

The send side, same run (``--sends``): the median cost of one ``send_individual``
plain, joining a delivery not yet executed, and refused by an executed one then
sent again without it (``worker/campaign_deliveries.py``), so that a chunk's cost
with deliveries can be set beside its lookup saving.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from connectus_worker.worker.connectus.client import ConnectusClient
from connectus_worker.worker.connectus.enums import DeliveryProduct
from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer

CHUNK = 200
REPEATS = 15


def _median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def measure(day_total: int) -> dict[str, float]:
    """Median ms of each lookup with ``day_total`` SMS sent today (a fresh sandbox)."""
    with SandboxServer(SandboxConfig()) as server, _client(server) as api:
        # Held PROGRAMADO for an hour: the lookup reads it the same either way.
        when = (datetime.now() + timedelta(hours=1)).replace(microsecond=0)
        chunk = api.v3.create_delivery(name="campaña #0", deliver_at=when,
                                       id_product=DeliveryProduct.SMS)  # fmt: skip
        assert chunk.id is not None
        for i in range(day_total - CHUNK):
            api.v3.send_sms(dst_number=f"5698{i:07d}", sms_content=f"otro {i}")
        for i in range(CHUNK):
            api.v3.send_sms(dst_number=f"5699{i:07d}", sms_content=f"campaña {i}",
                            id_delivery=chunk.id)  # fmt: skip
        today = date.today()
        return {
            "delivery_info": _median_ms(
                lambda: api.v3.sms_delivery_info(id_delivery=str(chunk.id))
            ),
            "date_report": _median_ms(
                lambda: api.v3.sms_date_report(begin_date=today, end_date=today)
            ),
        }


def _client(server: SandboxServer) -> ConnectusClient:
    return ConnectusClient(api_user="sandbox", api_key="sandbox-key", base_url=server.base_url,
                           v1_base_url=server.base_url, qr_base_url=server.base_url,
                           connect_timeout_s=2.0, read_timeout_s=60.0)  # fmt: skip


def measure_sends(n: int = CHUNK) -> dict[str, float]:
    """Median ms of one SMS send: plain, in a delivery, refused as executed then resent."""
    from connectus_worker.worker.campaign_deliveries import without_executed_delivery

    with SandboxServer(SandboxConfig()) as server, _client(server) as api:
        later = (datetime.now() + timedelta(hours=1)).replace(microsecond=0)
        pending = api.v3.create_delivery(name="pendiente", deliver_at=later,
                                         id_product=DeliveryProduct.SMS)  # fmt: skip
        # deliver_at is account-local (the sandbox's America/Santiago).
        local = datetime.now(ZoneInfo(SandboxConfig().time_zone)).replace(tzinfo=None)
        past = (local - timedelta(minutes=1)).replace(microsecond=0)
        done = api.v3.create_delivery(name="ejecutada", deliver_at=past,
                                      id_product=DeliveryProduct.SMS)  # fmt: skip
        deadline = time.monotonic() + 10
        while api.v3.get_delivery(id_delivery=done.id).status != "EJECUTADO":
            if time.monotonic() > deadline:
                raise RuntimeError("the past delivery never executed")
            time.sleep(0.05)
        send = without_executed_delivery(lambda p: api.v3.send_sms(**p).provider_id)
        counter = iter(range(10**9))

        def one(extra: dict[str, str]) -> Callable[[], object]:
            return lambda: send({"dst_number": f"5697{next(counter):07d}",
                                 "sms_content": "hola", **extra})  # fmt: skip

        return {
            "plain": _median_ms(one({}), n),
            "in_delivery": _median_ms(one({"id_delivery": pending.id}), n),
            "refused_then_resent": _median_ms(one({"id_delivery": done.id}), n),
        }


def main(argv: Sequence[str]) -> None:
    if "--sends" in argv:
        sends = measure_sends()
        print(f"one SMS send (median of {CHUNK}): plain {sends['plain']} ms, in a delivery "
              f"{sends['in_delivery']} ms, refused as executed then resent "
              f"{sends['refused_then_resent']} ms")  # fmt: skip
        argv = [a for a in argv if a != "--sends"]
    for total in [int(a) for a in argv] or [1_000, 5_000]:
        result = measure(total)
        print(f"{total} SMS today: delivery_info of {CHUNK} {result['delivery_info']} ms, "
              f"date_report {result['date_report']} ms (median of {REPEATS})")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
