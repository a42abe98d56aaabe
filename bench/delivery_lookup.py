"""Lookup cost: one ``delivery_info`` of a campaign chunk against one ``date_report`` of the day.

Same run, same sandbox (in process, loopback HTTP), the real client: a day with
``N`` SMS of which one 200-message delivery is the campaign chunk. Reconciliation
and provider-id lookups read one of the two per pass (``worker/reconcile.py``);
this is the figure issue 20 §3 asks for before v3 campaigns use deliveries
(docs/campaigns.md). Run: ``python -m bench.delivery_lookup [N ...]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer
from worker.connectus.client import ConnectusClient
from worker.connectus.enums import DeliveryProduct

CHUNK = 200
REPEATS = 15


def _median_ms(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def measure(day_total: int) -> dict[str, float]:
    """Median ms of each lookup with ``day_total`` SMS sent today (a fresh sandbox)."""
    with SandboxServer(SandboxConfig()) as server:
        api = ConnectusClient(api_user="sandbox", api_key="sandbox-key",
                              base_url=server.base_url, v1_base_url=server.base_url,
                              qr_base_url=server.base_url, connect_timeout_s=2.0,
                              read_timeout_s=60.0)  # fmt: skip
        with api:
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


def main(argv: Sequence[str]) -> None:
    for total in [int(a) for a in argv] or [1_000, 5_000]:
        result = measure(total)
        print(f"{total} SMS today: delivery_info of {CHUNK} {result['delivery_info']} ms, "
              f"date_report {result['date_report']} ms (median of {REPEATS})")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
