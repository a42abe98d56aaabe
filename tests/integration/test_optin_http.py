"""Opting back in over real HTTP and a real Redis: ALTA/START webhooks, /v1/optouts, history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from connectus_worker.config import Settings, load_settings
from devtools.service_server import ServiceServer

TOKEN = "it-token-0123456789abcdef"
SECRET = "it-hook-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NUMBER = "56987688060"
MARKETING = {"type": "sms", "dst_number": NUMBER, "sms_content": "Promo", "priority": "bulk"}


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, redis_client: redis.Redis) -> Settings:
    return load_settings({"REDIS_URL": redis_url, "KEY_PREFIX": redis_prefix,
                          "INTAKE_TOKENS": TOKEN, "WEBHOOK_SECRET": SECRET,
                          "OPT_IN_KEYWORDS": "ALTA,START,VOLVER"})  # fmt: skip


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with ServiceServer(settings) as server, httpx.Client(base_url=server.base_url,
                                                         timeout=10) as client:  # fmt: skip
        yield client


def incoming(http: httpx.Client, id_sms: str, text: str) -> httpx.Response:
    body = {"id_sms": id_sms, "dst_number": "4374", "src_number": NUMBER, "src_provider": "entel",
            "sms_content": text, "sms_content_binary": text.encode().hex()}  # fmt: skip
    return http.post("/webhooks/sms-incoming", params={"token": SECRET}, json=body)


def lookup(http: httpx.Client) -> dict[str, Any]:
    answer = http.post("/v1/optouts/lookup", json={"number": "+" + NUMBER}, headers=BEARER)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_stop_then_alta_by_sms_opts_back_in_with_the_history(http: httpx.Client) -> None:
    assert incoming(http, "in-1", "STOP").is_success
    assert http.post("/v1/messages", json=MARKETING, headers=BEARER).status_code == 422
    assert incoming(http, "in-2", " alta ").is_success  # trimmed, any case
    assert incoming(http, "in-2", " alta ").json() == {"result": "duplicate"}  # one entry
    assert http.post("/v1/messages", json=MARKETING, headers=BEARER).status_code == 202
    assert incoming(http, "in-3", "STOP").is_success
    assert incoming(http, "in-4", "volver").is_success  # a configured keyword
    state = lookup(http)
    assert state["opted_out"] is False
    assert [(c["action"], c["source"], c["changed"]) for c in state["history"]] == [
        ("out", "sms:in-1", True), ("in", "sms:in-2", True),
        ("out", "sms:in-3", True), ("in", "sms:in-4", True)]  # fmt: skip
    assert "connectus_opt_ins_total 2.0" in http.get("/metrics").text


def test_an_operator_opts_out_and_back_in_over_the_intake(http: httpx.Client) -> None:
    def set_state(opted_out: bool, number: Any = NUMBER) -> httpx.Response:
        body = {"number": number, "opted_out": opted_out}
        return http.post("/v1/optouts", json=body, headers=BEARER)

    first, again = set_state(True), set_state(True, "+56 9 8768 8060")
    assert first.json() == {"number": NUMBER, "opted_out": True, "changed": True}
    assert again.json() == {"number": NUMBER, "opted_out": True, "changed": False}
    assert http.get("/v1/optouts", headers=BEARER).json() == {"numbers": [NUMBER],
                                                              "next_cursor": 0}  # fmt: skip
    assert http.post("/v1/messages", json=MARKETING, headers=BEARER).status_code == 422
    assert set_state(False).json() == {"number": NUMBER, "opted_out": False, "changed": True}
    assert http.get("/v1/optouts", headers=BEARER).json()["numbers"] == []
    assert http.post("/v1/messages", json=MARKETING, headers=BEARER).status_code == 202
    assert [c["source"] for c in lookup(http)["history"]] == ["intake"] * 3

    bad = set_state(True, "12345")
    assert bad.status_code == 422 and bad.json()["invalid-params"][0]["name"] == "number"
    missing = http.post("/v1/optouts", json={"number": NUMBER}, headers=BEARER)
    assert missing.status_code == 422
    assert [p["name"] for p in missing.json()["invalid-params"]] == ["opted_out"]
    assert http.get("/v1/optouts", params={"count": "0"}, headers=BEARER).status_code == 422
    assert http.post("/v1/optouts", json={"number": NUMBER, "opted_out": True}).status_code == 401
    assert http.get("/v1/optouts").status_code == 401
