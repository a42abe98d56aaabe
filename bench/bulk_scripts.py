"""``python -m bench.bulk_scripts``: Redis time per recipient of a v1 bulk chunk's scripts.

A v1 bulk campaign saturates Redis's one thread (``docs/benchmarks.md``). This
measures, on a private ``redis-server`` and with one client (so nothing else is
counted), what each of a chunk's three scripts costs Redis per recipient:

- ``release``: the pump's :meth:`campaign.store.CampaignStore.release_bulk`;
- ``claim``: :meth:`ledger.jobs_batch.BatchLedger.claim_bulk` (the records are made here);
- ``finish``: :meth:`ledger.jobs_batch.BatchLedger.finish_sent_many` (every recipient sent).

Figures are µs of Redis CPU per recipient from ``INFO commandstats`` (the
``evalsha`` total includes the commands inside the script; they are shown
too, and ``lua`` is the rest: the interpreter and ``redis.call``'s own work).
``--chunks`` chunks of 1,000 per round; ``--rounds`` rounds, each on fresh keys;
the table shows each round.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from connectus_worker.campaign.render import masked
from connectus_worker.campaign.store import CampaignStore, job_id_for
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.jobs_batch import BatchLedger, BulkChunk
from connectus_worker.ledger.keys import Keys
from connectus_worker.worker.campaign_messages import chunk_message
from devtools.embedded_redis import RedisServer

SIZE = 1000
PHASES = ("release", "claim", "finish")


@contextmanager
def _private_redis() -> Iterator[redis.Redis]:
    exe = shutil.which("redis-server")
    server = RedisServer(executable=exe) if exe else RedisServer()
    try:
        yield redis.Redis.from_url(server.start())
    finally:
        server.close()


def _campaign(store: CampaignStore, cid: str, chunks: int) -> None:
    rows = [[f"5698{i:07d}", "Ana"] for i in range(chunks * SIZE)]
    store.write_batches(cid, [rows], chunk_size=SIZE)
    now = int(time.time() * 1000)
    fields = {"campaign_id": cid, "name": "bench", "kind": "sms", "transport": "v1_bulk",
              "state": "running", "text": "Hola {name}", "subject": "",
              "fields": json.dumps(["name"]), "src": "", "timezone": "America/Santiago",
              "deliver_at": now, "window": "", "max_lateness_s": 0, "total": len(rows),
              "chunks": chunks, "chunk_size": SIZE, "cursor": 0, "segments": len(rows),
              "created_at": now}  # fmt: skip
    store.commit(cid, fields, fingerprint="fp", idempotency_key=None)


def _usec(client: redis.Redis) -> dict[str, float]:
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return {name.removeprefix("cmdstat_"): float(s["usec"]) for name, s in stats.items()}


def one_round(client: redis.Redis, number: int, chunks: int) -> dict[str, dict[str, float]]:
    """µs of Redis CPU per recipient, by phase: ``total``, each inner command, ``lua``."""
    keys = Keys(f"bench-scripts-{number}")
    store = CampaignStore(client, keys, ttl_s=3600, job_ttl_s=3600)
    jobs = JobStore(client, keys, ttl_s=3600)
    batch, cid = BatchLedger(jobs), "c1"
    _campaign(store, cid, chunks)
    fences: dict[int, list[int]] = {}
    out: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        client.config_resetstat()
        for n in range(chunks):
            ids = [job_id_for(cid, n * SIZE + i) for i in range(SIZE)]
            if phase == "release":
                campaign = store.get(cid)
                assert campaign is not None
                message = chunk_message("bulk", cid, n)
                assert store.release_bulk(campaign, queue="bulk", chunk_message=message)
            elif phase == "claim":
                campaign = store.get(cid)
                assert campaign is not None
                rows = [(r[0], masked(campaign, r[0]), 1) for r in store.chunk(cid, n)]
                chunk = BulkChunk(cid, n, n * SIZE, "sms", "bulk", 3600)
                claims = batch.claim_bulk(chunk, rows, worker_id="w", lease_ms=60_000, token="t")
                assert all(c.status == "ok" for c in claims)
                fences[n] = [c.fence for c in claims]
            else:
                items = [(i, f, f"p{i}") for i, f in zip(ids, fences[n], strict=True)]
                assert all(batch.finish_sent_many(items, {"state": "sent", "outcome": "sent"}))
        usec = _usec(client)
        per = {name: value / (chunks * SIZE) for name, value in usec.items()}
        total = per.pop("evalsha", 0.0)
        inner = {name: value for name, value in per.items() if value >= 0.05}
        out[phase] = {"total": total, **inner, "lua": total - sum(inner.values())}
    for name in client.scan_iter(f"{keys.prefix}:*", count=10_000):
        client.delete(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=30, help="chunks of 1,000 per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with _private_redis() as client:
        rounds = [one_round(client, n, args.chunks) for n in range(args.rounds)]
    if args.json:
        print(json.dumps({"chunk_size": SIZE, "chunks": args.chunks, "rounds": rounds}))
        return 0
    print(f"µs of Redis CPU per recipient ({args.chunks} chunks of {SIZE}, private redis-server)")
    for i, result in enumerate(rounds, start=1):
        cells = []
        for phase in PHASES:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in result[phase].items() if k != "total")
            cells.append(f"{phase} {result[phase]['total']:.2f} ({parts})")
        total = sum(result[p]["total"] for p in PHASES)
        print(f"round {i}: " + "; ".join(cells) + f"; all three {total:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
