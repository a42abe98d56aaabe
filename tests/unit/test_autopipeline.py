"""core.autopipeline: many threads' script calls share pipelines, each keeps its answer."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from core.autopipeline import AutoPipeline

ECHO = "if ARGV[1] == 'boom' then return redis.error_reply('ERR boom') end " \
    "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"  # fmt: skip


class _GatedClient:
    """A client whose batches wait for ``gate`` before they are written: callers pile up.

    The gate sits on the connection the AutoPipeline takes from the pool.
    """

    def __init__(self, client: redis.Redis, *, fail: BaseException | None = None) -> None:
        self.client = client
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = fail
        self.batch_sizes: list[int] = []
        self.connection_pool = _GatedPool(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class _GatedPool:
    def __init__(self, gated: _GatedClient) -> None:
        self.gated = gated

    def get_connection(self) -> Any:
        return _GatedConnection(self.gated, self.gated.client.connection_pool.get_connection())

    def release(self, conn: Any) -> None:
        self.gated.client.connection_pool.release(conn.conn)


class _GatedConnection:
    def __init__(self, gated: _GatedClient, conn: Any) -> None:
        self.gated, self.conn, self.size = gated, conn, 0

    def pack_commands(self, commands: list[tuple[Any, ...]]) -> Any:
        self.size = len(commands)
        return self.conn.pack_commands(commands)

    def send_packed_command(self, packed: Any) -> None:
        gated = self.gated
        gated.entered.set()
        assert gated.gate.wait(10)
        gated.batch_sizes.append(self.size)
        if gated.fail is not None:
            raise gated.fail
        self.conn.send_packed_command(packed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    server = fakeredis.FakeServer()
    fake = fakeredis.FakeRedis(server=server)
    fake.script_load(ECHO)  # else each script's first call is a NOSCRIPT round trip
    yield fake


def _call_from_threads(auto: Any, script: Any, values: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}

    def one(value: str) -> None:
        try:
            answers[value] = script(keys=[f"k:{value}"], args=[value], client=auto)
        except redis.RedisError as exc:
            answers[value] = exc

    threads = [threading.Thread(target=one, args=(v,)) for v in values]
    for thread in threads:
        thread.start()
    return {"threads": threads, "answers": answers}


def _stuck_leader(
    client: redis.Redis, **options: Any
) -> tuple[_GatedClient, AutoPipeline, Any, dict[str, Any]]:
    """A first caller leading a batch that waits at the gate: (gated, auto, script, leader)."""
    gated = _GatedClient(client, fail=options.pop("fail", None))
    auto = AutoPipeline(gated, **options)  # type: ignore[arg-type]
    script = client.register_script(ECHO)
    leader = _call_from_threads(auto, script, ["first"])
    assert gated.entered.wait(5)
    return gated, auto, script, leader


def _release(gated: _GatedClient, *groups: dict[str, Any]) -> None:
    gated.gate.set()
    for group in groups:
        for thread in group["threads"]:
            thread.join(5)


def _wait_queued(auto: AutoPipeline, count: int) -> None:
    """Until ``count`` calls wait behind the gated first batch (polled: a queued
    call signals nothing of its own)."""
    for _ in range(10_000):
        if auto.queued >= count:
            return
        threading.Event().wait(0.001)
    raise AssertionError(f"only {auto.queued} calls queued")


def test_calls_waiting_together_share_one_pipeline_and_keep_their_own_answers(
    client: redis.Redis,
) -> None:
    gated, auto, script, first = _stuck_leader(client)
    rest = _call_from_threads(auto, script, [f"v{i}" for i in range(20)])
    _wait_queued(auto, 20)
    _release(gated, first, rest)
    assert first["answers"] == {"first": b"first"}
    assert rest["answers"] == {f"v{i}": f"v{i}".encode() for i in range(20)}
    assert gated.batch_sizes == [1, 20]
    assert (auto.calls, auto.batches) == (21, 2)
    assert client.get("k:v7") == b"v7"
    auto.close()


def test_a_script_error_reaches_only_its_own_caller(client: redis.Redis) -> None:
    gated, auto, script, first = _stuck_leader(client)
    rest = _call_from_threads(auto, script, ["a", "boom", "b"])
    _wait_queued(auto, 3)
    _release(gated, first, rest)
    answers = rest["answers"]
    assert answers["a"] == b"a" and answers["b"] == b"b"
    assert isinstance(answers["boom"], redis.ResponseError)
    assert "boom" in str(answers["boom"])
    assert gated.batch_sizes == [1, 3]
    auto.close()


def test_a_lost_connection_fails_every_call_of_the_batch_with_its_own_error(
    client: redis.Redis,
) -> None:
    lost = redis.ConnectionError("Connection reset by peer")
    gated, auto, script, first = _stuck_leader(client, fail=lost)
    rest = _call_from_threads(auto, script, ["a", "b"])
    _wait_queued(auto, 2)
    _release(gated, first, rest)
    errors = [*first["answers"].values(), *rest["answers"].values()]
    assert len(errors) == 3
    assert all(type(e) is redis.ConnectionError and e.__cause__ is lost for e in errors)
    assert len({id(e) for e in errors}) == 3  # one object per raising thread
    gated.fail = None  # the next batch is written (the connection was dropped, made again)
    assert script(keys=["k:again"], args=["again"], client=auto) == b"again"
    assert gated.batch_sizes == [1, 2, 1]
    auto.close()


def test_a_script_redis_forgot_is_loaded_again(client: redis.Redis) -> None:
    auto = AutoPipeline(client)
    script = client.register_script(ECHO)
    assert script(keys=["k"], args=["one"], client=auto) == b"one"
    client.script_flush()
    assert script(keys=["k"], args=["two"], client=auto) == b"two"
    assert client.get("k") == b"two"
    auto.close()


def test_a_call_still_queued_when_its_wait_runs_out_leaves_unsent(
    client: redis.Redis,
) -> None:
    gated, auto, script, leader = _stuck_leader(client, wait_timeout_s=0.2)
    with pytest.raises(redis.TimeoutError, match=r"0\.2 s"):
        script(keys=["k:late"], args=["late"], client=auto)
    assert auto.queued == 0
    _release(gated, leader)
    assert leader["answers"] == {"first": b"first"}
    assert client.get("k:late") is None  # never written: the ledger's retry is the only send
    # No leader is left behind: the next call leads its own batch, within its 0.2 s.
    assert script(keys=["k:next"], args=["next"], client=auto) == b"next"
    assert gated.batch_sizes == [1, 1]


def test_a_call_already_written_waits_past_its_timeout_for_the_answer(
    client: redis.Redis,
) -> None:
    gated, auto, script, leader = _stuck_leader(client, wait_timeout_s=0.2)
    # Queued behind the stuck leader, within their wait: they lead the next batch.
    rest = _call_from_threads(auto, script, ["a", "b"])
    _wait_queued(auto, 2)
    gated.entered.clear()
    # Swapped before the first gate opens: the second batch sticks in flight past 0.2 s.
    first_gate, second_gate = gated.gate, threading.Event()
    gated.gate = second_gate
    first_gate.set()
    assert gated.entered.wait(5)
    for thread in leader["threads"]:
        thread.join(5)
    # The call that does not lead that batch waits past its 0.2 s, written, and stays.
    for _ in range(10_000):
        if auto.overdue:
            break
        threading.Event().wait(0.001)
    assert auto.overdue == 1
    second_gate.set()
    for thread in rest["threads"]:
        thread.join(5)
    assert rest["answers"] == {"a": b"a", "b": b"b"}
    assert gated.batch_sizes == [1, 2]


def test_a_forked_child_starts_with_no_leader(client: redis.Redis) -> None:
    gated, auto, script, leader = _stuck_leader(client)  # the parent forks while it leads
    pid = os.fork()
    if pid == 0:  # the child: that leader is not here; a call must still answer
        try:
            gated.gate.set()
            ok = script(keys=["k"], args=["child"], client=auto) == b"child"
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    gated.gate.set()
    for thread in leader["threads"]:
        thread.join(5)
    assert os.waitstatus_to_exitcode(status) == 0
    assert leader["answers"] == {"first": b"first"}


def test_after_close_calls_go_straight_to_the_client(client: redis.Redis) -> None:
    auto = AutoPipeline(client)
    script = client.register_script(ECHO)
    assert script(keys=["k"], args=["a"], client=auto) == b"a"
    auto.close()
    assert script(keys=["k"], args=["b"], client=auto) == b"b"
    assert (auto.calls, auto.batches) == (1, 1)


def test_a_lone_caller_makes_its_own_round_trip(client: redis.Redis) -> None:
    auto = AutoPipeline(client)
    script = client.register_script(ECHO)
    before = threading.active_count()
    for value in ("a", "b", "c"):
        assert script(keys=["k"], args=[value], client=auto) == value.encode()
    assert (auto.calls, auto.batches) == (3, 3)
    assert threading.active_count() == before  # no thread of its own
    assert auto.queued == 0
