"""``connectus qr ...``, run as a subprocess against a running sandbox: pairing (status,
the QR in the terminal and as a PNG), a number's last messages and group administration."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from connectus_worker.worker.breaker import CircuitBreaker
from devtools.stack import LocalStack
from tests.support.cli import run, run_json
from tests.support.redis_namespace import new_prefix

AUTH = ("sandbox", "sandbox-key")


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One sandbox for the module's tests (no workers: the CLI calls it directly). Each
    test uses groups and numbers of its own; the one that unpairs the session pairs it
    again."""
    with LocalStack(redis_url=redis_url, env={"KEY_PREFIX": new_prefix()}, start_workers=False,
                    log_dir=tmp_path_factory.mktemp("qr-stack")) as stack:  # fmt: skip
        yield stack


def test_qr_status_and_pairing_code(stack: LocalStack, tmp_path: Path) -> None:
    env = stack.env
    assert run_json(["qr", "status"], env) == {"status": "CONNECTED", "connected": True}

    data = run_json(["qr", "code"], env)
    assert data["qr"].startswith("2@sandbox,") and data["version"] >= 1

    png = tmp_path / "pair.png"
    written = run_json(["qr", "code", "--png", str(png), "--scale", "4"], env)
    assert written["png"] == str(png)
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])  # IHDR
    modules = 17 + 4 * written["version"] + 2 * 4  # the symbol and its quiet zone
    assert width == height == modules * 4

    drawn = run(["qr", "code"], env)
    assert drawn.returncode == 0, drawn.stderr
    assert "█" in drawn.stdout or "▀" in drawn.stdout  # half blocks: two rows a line
    assert "Linked devices" in drawn.stdout

    unwritable = run(["qr", "code", "--png", str(tmp_path / "no" / "dir.png")], env)
    assert unwritable.returncode == 2 and "--png" in unwritable.stderr


def test_qr_groups_administration(stack: LocalStack) -> None:
    env = stack.env
    created = run_json(["qr", "groups", "create", "Ventas", "-n", "+56 9 8765 4321",
                        "--number", "56987654322"], env)  # fmt: skip
    assert created["participants"] == ["56987654321", "56987654322"]
    added = run_json(["qr", "groups", "add", "Ventas", "-n", "525512345678"], env)
    assert "525512345678" in added["participants"]
    promoted = run_json(["qr", "groups", "promote", "Ventas", "-n", "56987654322"], env)
    assert promoted["admins"] == ["56987654322"]
    demoted = run_json(["qr", "groups", "demote", "Ventas", "-n", "56987654322"], env)
    assert demoted["admins"] == []
    removed = run_json(["qr", "groups", "remove", "Ventas", "-n", "525512345678"], env)
    assert "525512345678" not in removed["participants"]
    updated = run_json(["qr", "groups", "update", "Ventas", "--subject", "Ventas Sur",
                        "--description", "zona sur"], env)  # fmt: skip
    assert (updated["group"], updated["description"]) == ("Ventas Sur", "zona sur")
    invite = run_json(["qr", "groups", "invite", "Ventas Sur"], env)
    assert invite["invite_link"].startswith("https://chat.whatsapp.com/")

    with stack.sandbox_client() as sandbox:
        sent = sandbox.post("/send-message-to-group", auth=AUTH,
                            json={"groupName": "Ventas Sur", "message": "Hola equipo"})  # fmt: skip
        direct = sandbox.post("/send", auth=AUTH,
                              json={"number": "56987654321", "message": "Hola Ana"})  # fmt: skip
    listed = run_json(["qr", "groups", "messages", "Ventas Sur"], env)
    assert [(m["message_id"], m["message"], m["from_me"]) for m in listed["messages"]] == [
        (sent.json()["message_id"], "Hola equipo", True)]  # fmt: skip
    with_ana = run_json(["qr", "messages", "+56 9 8765 4321"], env)
    assert [m["message_id"] for m in with_ana["messages"]] == [direct.json()["message_id"]]
    table = run(["qr", "groups", "messages", "Ventas Sur"], env)
    assert table.returncode == 0 and "Hola equipo" in table.stdout


def test_qr_cli_names_bad_input_and_refusals(stack: LocalStack) -> None:
    env = stack.env
    bad = run(["qr", "groups", "create", "G", "-n", "56987654321", "-n", "abc"], env)
    assert bad.returncode == 2 and "--number" in bad.stderr and "'abc'" in bad.stderr
    nothing = run(["qr", "groups", "update", "G"], env)
    assert nothing.returncode == 2 and "--subject" in nothing.stderr
    missing = run_json(["qr", "groups", "invite", "No existe"], env, code=1)
    assert "not found" in missing["error"]

    with stack.sandbox_client() as sandbox:
        sandbox.put("/_sandbox/qr_session", json={"status": "DISCONNECTED"})
    try:
        assert run_json(["qr", "status"], env) == {"status": "DISCONNECTED", "connected": False}
        refused = run_json(["qr", "groups", "create", "G", "-n", "56987654321"], env, code=1)
        assert "not connected" in refused["error"] and "connectus qr code" in refused["error"]
        assert run_json(["qr", "code"], env)["qr"]  # the pairing code is what fixes it
    finally:
        with stack.sandbox_client() as sandbox:  # paired again for the module's other tests
            sandbox.put("/_sandbox/qr_session", json={"status": "CONNECTED"}).raise_for_status()


def test_breaker_shows_and_closes_the_qr_session_pause(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix,
           "CONNECTUS_API_USER": "sandbox"}  # fmt: skip
    breaker = CircuitBreaker(redis_client, prefix=redis_prefix, account="default")
    breaker.trip("qr_session", "GET /status: DISCONNECTED")
    body = run_json(["breaker"], env)["breaker"]
    [scope] = body["scopes"]
    assert (scope["scope"], scope["state"], scope["reason"]) == (
        "qr_session", "open", "GET /status: DISCONNECTED")  # fmt: skip
    human = run(["breaker"], env)
    assert "qr_session: open until" in human.stdout and "GET /status: DISCONNECTED" in human.stdout
    closed = run_json(["breaker", "--close", "qr_session"], env)
    assert closed["closed"] == {"account": "default", "scope": "qr_session", "was": "open"}
    assert closed["breaker"]["scopes"] == []
