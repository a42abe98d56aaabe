"""The console's login, session cookie, CSRF token and roles (the app in process through
httpx's ASGI transport, fakeredis): who may see, who may act, and what is refused
without a token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest

from connectus_worker.config import ConfigError, load_settings
from connectus_worker.config.console_users import (
    MIN_ITERATIONS,
    hash_password,
    parse_users,
    verify_password,
)
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.optout import is_opted_out
from connectus_worker.service import build_app

ADMIN, VIEWER = ("ana", "admin-password-1"), ("vic", "viewer-password-1")
USERS = ";".join(
    f"{name}:{role}:{hash_password(password, iterations=MIN_ITERATIONS)}"
    for (name, password), role in ((ADMIN, "admin"), (VIEWER, "read-only"))
)
ENV = {
    "INTAKE_TOKENS": "tok-A-0123456789abcdef",
    "WEBHOOK_SECRET": "hook-0123456789abcdef",
    "CONSOLE_USERS": USERS,
    "CONSOLE_SECRET_KEY": "console-secret-key-0123456789abcdef",
}
NUMBER = "+56 9 8765 4321"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _client(env: dict[str, str], redis: fakeredis.FakeRedis) -> httpx.AsyncClient:
    app = build_app(load_settings(env), redis_client=redis)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@pytest.fixture
def redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
async def client(redis: fakeredis.FakeRedis) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(ENV, redis) as http:
        yield http


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


async def _login(client: httpx.AsyncClient, who: tuple[str, str]) -> str:
    """Log in; returns the CSRF token of the new session."""
    token = _csrf((await client.get("/ui/login")).text)
    answer = await client.post("/ui/login", data={"csrf_token": token, "username": who[0],
                                            "password": who[1]}, follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text
    return _csrf((await client.get("/ui/optouts")).text)


async def test_a_page_without_a_session_sends_to_the_login_form(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login"
    assert (
        "default-src 'self'" in (await client.get("/ui/login")).headers["content-security-policy"]
    )


async def test_a_wrong_password_is_refused_and_a_right_one_opens_the_overview(
    client: httpx.AsyncClient,
) -> None:
    token = _csrf((await client.get("/ui/login")).text)
    wrong = await client.post("/ui/login", data={"csrf_token": token, "username": ADMIN[0],
                                           "password": "not-it"})  # fmt: skip
    assert wrong.status_code == 401
    assert "Wrong name or password" in wrong.text
    await _login(client, ADMIN)
    page = await client.get("/ui/")
    assert page.status_code == 200
    assert "Queues" in page.text and "ana (admin)" in page.text
    cookie = page.request.headers.get("cookie", "")
    assert "HttpOnly" not in cookie  # the browser sends only name=value
    assert (await client.get("/ui/static/htmx.min.js")).status_code == 200


async def test_the_login_form_needs_its_csrf_token(client: httpx.AsyncClient) -> None:
    await client.get("/ui/login")
    answer = await client.post("/ui/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert (await client.get("/ui/", follow_redirects=False)).status_code == 303  # not logged in


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, redis: fakeredis.FakeRedis
) -> None:
    token = await _login(client, ADMIN)
    keys = Keys("cw")
    refused = await client.post("/ui/optouts/add", data={"number": NUMBER})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = await client.post("/ui/optouts/add", data={"number": NUMBER, "csrf_token": token + "x"})
    assert wrong.status_code == 403
    assert not is_opted_out(redis, keys, "56987654321")
    done = await client.post("/ui/optouts/add", data={"number": NUMBER, "csrf_token": token},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert is_opted_out(redis, keys, "56987654321")
    header = await client.post("/ui/optouts/remove", data={"number": NUMBER},
                         headers={"X-CSRF-Token": token}, follow_redirects=False)  # fmt: skip
    assert header.status_code == 303
    assert not is_opted_out(redis, keys, "56987654321")


async def test_a_read_only_operator_sees_but_cannot_act(
    client: httpx.AsyncClient, redis: fakeredis.FakeRedis
) -> None:
    token = await _login(client, VIEWER)
    page = await client.get("/ui/optouts")
    assert page.status_code == 200
    assert "Opt out</button>" not in page.text  # no action offered
    answer = await client.post("/ui/optouts/add", data={"number": NUMBER, "csrf_token": token})
    assert answer.status_code == 403
    assert "read-only" in answer.text
    assert not is_opted_out(redis, Keys("cw"), "56987654321")
    for path in ("/ui/campaigns/c1/pause", "/ui/deadletters/purge", "/ui/review/drop"):
        assert (await client.post(path, data={"csrf_token": token, "all": "1"})).status_code == 403


async def test_logging_out_ends_the_session(client: httpx.AsyncClient) -> None:
    token = await _login(client, ADMIN)
    out = await client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert (await client.get("/ui/", follow_redirects=False)).status_code == 303


async def test_a_forged_or_stale_cookie_is_no_session(redis: fakeredis.FakeRedis) -> None:
    async with _client(ENV, redis) as first:
        await _login(first, ADMIN)
        cookie = first.cookies.get("cw_console")
    assert cookie
    other = {**ENV, "CONSOLE_SECRET_KEY": "another-secret-key-0123456789abcdef"}
    # The same key, but the operator's password changed: the old session ends too.
    rehashed = f"ana:admin:{hash_password('a-new-password-1', iterations=MIN_ITERATIONS)}"
    for env in (other, {**ENV, "CONSOLE_USERS": rehashed}):
        async with _client(env, redis) as second:
            second.cookies.set("cw_console", cookie, path="/ui")
            assert (await second.get("/ui/", follow_redirects=False)).status_code == 303
    async with _client(ENV, redis) as same:
        same.cookies.set("cw_console", cookie, path="/ui")
        assert (await same.get("/ui/", follow_redirects=False)).status_code == 200


async def test_without_console_users_there_is_no_console(redis: fakeredis.FakeRedis) -> None:
    env = {k: v for k, v in ENV.items() if not k.startswith("CONSOLE_")}
    async with _client(env, redis) as http:
        assert (await http.get("/ui/login")).status_code == 404


@pytest.mark.parametrize(
    ("users", "reason"),
    [
        ("ana:admin", "entry #1 must be name:role:hash"),
        ("ana:boss:pbkdf2_sha256$100000$00112233445566778899aabbccddeeff$" + "0" * 64,
         "role must be admin or read-only"),
        ("ana:admin:plain-password", "the hash must be pbkdf2_sha256"),
        ("ana:admin:pbkdf2_sha256$1000$00112233445566778899aabbccddeeff$" + "0" * 64,
         "needs >= 100000 iterations"),
        ("a b:admin:x", "the name must be"),
    ],
)  # fmt: skip
def test_bad_console_users_fail_at_start_naming_the_variable(users: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**ENV, "CONSOLE_USERS": users})
    assert caught.value.variable == "CONSOLE_USERS"
    assert reason in caught.value.reason
    assert "0" * 64 not in str(caught.value)


def test_console_users_need_a_long_enough_secret_key() -> None:
    with pytest.raises(ConfigError) as short:
        load_settings({**ENV, "CONSOLE_SECRET_KEY": "short"})
    assert short.value.variable == "CONSOLE_SECRET_KEY"
    without = {k: v for k, v in ENV.items() if k != "CONSOLE_SECRET_KEY"}
    with pytest.raises(ConfigError) as missing:
        build_app(load_settings(without), redis_client=fakeredis.FakeRedis())
    assert missing.value.variable == "CONSOLE_SECRET_KEY"


def test_password_hashes_verify_only_their_password() -> None:
    stored = hash_password("correct horse", iterations=MIN_ITERATIONS)
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("correct horse", "garbage")
    assert hash_password("correct horse", iterations=MIN_ITERATIONS) != stored  # salted
    assert parse_users(f"x@y.z:read-only:{stored}")["x@y.z"].can_act is False


async def test_every_page_renders_for_a_read_only_operator(client: httpx.AsyncClient) -> None:
    await _login(client, VIEWER)
    for path, expected in (("/ui/", "Rate limits"), ("/ui/campaigns", "no campaign"),
                           ("/ui/search?q=nothing-like-this", "No job found"),
                           ("/ui/search?q=bad%01query", "control character"),
                           ("/ui/deadletters?older=1h", "no dead letter matches"),
                           ("/ui/review", "nothing held for review"),
                           ("/ui/optouts", "no number is opted out")):  # fmt: skip
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert expected in answer.text, path
    bad = await client.get("/ui/deadletters?older=soon")
    assert bad.status_code == 400 and "older/newer" in bad.text
    missing = await client.get("/ui/campaigns/no-such-campaign")
    assert missing.status_code == 404


async def test_an_htmx_refresh_after_the_session_ended_sends_the_page_to_login(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/ui/live/overview", headers={"HX-Request": "true"})
    assert answer.status_code == 204 and answer.headers["HX-Redirect"] == "/ui/login"
