"""The console bench's data: the loader script writes what ``_record`` describes, and
the run's queries find what was loaded (small counts, fakeredis; no timing here)."""

from __future__ import annotations

import fakeredis

from bench.console_bench import KEY, LOAD, _number, _record, load
from connectus_worker.domain.hashing import recipient_digest
from connectus_worker.ledger.keys import Keys
from connectus_worker.ledger.lookup import find_jobs, job_history

NOW = 1_700_000_000_000
KEYS = Keys("cwbench-unit")


def test_the_loader_writes_the_records_and_index_entries_record_describes() -> None:
    client = fakeredis.FakeRedis()
    load(client, KEYS, jobs=40, campaigns=3, now_ms=NOW)
    for i in range(40):
        job_id, record = _record(i, NOW, 3)
        stored = {k.decode(): v.decode() for k, v in client.hgetall(KEYS.job(job_id)).items()}
        assert stored == {k: str(v) for k, v in record.items()}, i
        assert find_jobs(client, KEYS, "+" + _number(i), content_hash_key=KEY) == [job_id]
        assert find_jobs(client, KEYS, str(record["idempotency_key"]), content_hash_key=KEY)[0] == (
            job_id
        )
        if "correlation_id" in record:
            found = find_jobs(client, KEYS, str(record["correlation_id"]), content_hash_key=KEY)
            assert found == [job_id]
    history = job_history(client, KEYS, _record(7, NOW, 3)[0])
    assert history is not None and [e.event for e in history.events] == ["queued", "sent"]
    assert client.zcard(KEYS.campaigns) == 3
    assert LOAD.startswith("--") and recipient_digest(KEY, _number(1))
