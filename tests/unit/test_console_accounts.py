"""The console's overview shows each Connectus account apart (its breaker pauses and
its limiter rates), at a fixed number of Redis commands per account (fakeredis, the
app in process through httpx's ASGI transport)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import httpx
import pytest

from connectus_worker.config import load_settings
from connectus_worker.config.console_users import MIN_ITERATIONS, hash_password
from connectus_worker.service import build_app
from connectus_worker.worker.breaker import CircuitBreaker

ENV = {
    "INTAKE_TOKENS": "tok-A-0123456789abcdef",
    "WEBHOOK_SECRET": "hook-0123456789abcdef",
    "CONSOLE_USERS": f"ana:read-only:{hash_password('viewer-password-1', iterations=MIN_ITERATIONS)}",
    "CONSOLE_SECRET_KEY": "console-secret-key-0123456789abcdef",
}
TWO = {
    **ENV,
    "CONNECTUS_ACCOUNTS": "default,brand_b",
    "RATE_SMS_PER_S": "40",
    "CONNECTUS_BRAND_B_RATE_SMS_PER_S": "5",
    "CONNECTUS_BRAND_B_WEBHOOK_SECRET": "hook-brand-b-0123456789",
}
#: What the overview reads per account (docs/console.md): the breaker's HKEYS and
#: 3 host HGETALL, and HGETALL + TIME per limiter product (4), plus 2 per open scope.
PER_ACCOUNT, PER_OPEN_SCOPE = 12, 2
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Counting(fakeredis.FakeRedis):  # type: ignore[misc]
    """Counts the commands sent, alone or in a pipeline."""

    commands = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        execute = pipe.execute

        def counted(raise_on_error: bool = True) -> Any:
            self.commands += len(pipe)
            return execute(raise_on_error)

        pipe.execute = counted
        return pipe


@pytest.fixture
def two() -> Counting:
    return Counting()


async def _viewer(
    env: dict[str, str], redis: fakeredis.FakeRedis
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(load_settings(env), redis_client=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as http:  # fmt: skip
        token = re.findall(r'name="csrf_token" value="([^"]+)"', (await http.get("/ui/login")).text)
        await http.post("/ui/login", data={"csrf_token": token[0], "username": "ana",
                                           "password": "viewer-password-1"})  # fmt: skip
        yield http


def _section(page: str, account: str) -> str:
    found = re.search(rf'<section data-account="{account}">(.*?)</section>', page, re.S)
    assert found, f"no section of account {account}"
    return found.group(1)


async def _overview_commands(env: dict[str, str], redis: Counting) -> tuple[str, int]:
    async for http in _viewer(env, redis):
        before = redis.commands
        answer = await http.get("/ui/live/overview", headers={"HX-Request": "true"})
        assert answer.status_code == 200, answer.text[:300]
        return answer.text, redis.commands - before
    raise AssertionError("no client")


async def test_the_overview_shows_each_accounts_pauses_and_rates_apart(two: Counting) -> None:
    settings = load_settings(TWO)
    assert CircuitBreaker.from_settings(settings, two, "brand_b").trip("product:sms", "saldo")
    page, _ = await _overview_commands(TWO, two)
    a, b = _section(page, "default"), _section(page, "brand_b")
    assert "circuit breaker: closed" in a and "every scope of default is closed" in a
    assert "product:sms" in b and "saldo" in b and "product:sms" not in a
    # Each account's limiter at its own configured rate: 40/s and 5/s.
    a_sms = re.search(r"<td>sms</td><td>([\d.]+)/s</td><td>([\d.]+)/s</td>", a)
    b_sms = re.search(r"<td>sms</td><td>([\d.]+)/s</td><td>([\d.]+)/s</td>", b)
    assert a_sms and b_sms
    assert float(a_sms.group(1)) == float(a_sms.group(2)) == 40.0
    assert float(b_sms.group(1)) == float(b_sms.group(2)) == 5.0


async def test_each_account_costs_the_overview_a_fixed_number_of_commands() -> None:
    one_redis, two_redis = Counting(), Counting()
    _, one = await _overview_commands(ENV, one_redis)
    _, two = await _overview_commands(TWO, two_redis)
    assert two - one == PER_ACCOUNT
    CircuitBreaker.from_settings(load_settings(TWO), two_redis, "brand_b").trip("host:v1", "down")
    _, with_scope = await _overview_commands(TWO, two_redis)
    assert with_scope - two == PER_OPEN_SCOPE
