"""``connectus clients ...`` against the sandbox over HTTP, and a send charged to a subclient."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.cli import run, run_json
from tests.support.waiting import wait_for

CHILE = "56987654321"


def test_subclients_from_the_cli_and_an_sms_charged_to_one(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with LocalStack(redis_url=redis_url, env={"KEY_PREFIX": redis_prefix}, start_workers=False,
                    processes=1, threads=2, log_dir=tmp_path) as stack:  # fmt: skip
        env = stack.env
        created = run_json(["clients", "create", "--name", "Tienda Norte"], env)
        id_client = created["id_unique"]
        assert id_client and created["name"] == "Tienda Norte"
        renamed = run_json(["clients", "update", id_client, "--name", "Tienda Sur"], env)
        assert renamed["name"] == "Tienda Sur"

        added = run_json(["clients", "add-balance", id_client, "--amount", "5",
                          "--product", "sms", "--country", "chile"], env)  # fmt: skip
        assert added["id_country"] == 1 and added["message"]
        run_json(["clients", "add-balance", id_client, "--amount", "7", "--product", "whatsapp"],
                 env)  # fmt: skip
        run_json(["clients", "remove-balance", id_client, "--amount", "2", "--product", "sms",
                  "--country", "1"], env)  # fmt: skip

        def listed() -> dict[str, Any]:
            clients = run_json(["clients", "list"], env)["clients"]
            return next(c for c in clients if c["id_unique"] == id_client)

        mine = listed()
        assert mine["name"] == "Tienda Sur" and mine["sms_balance"]["Chile"] == 3
        assert mine["whatsapp_balance"] == 7
        human = run(["clients", "list"], env)
        assert human.returncode == 0 and id_client in human.stdout
        assert run_json(["clients", "show", id_client], env)["id_unique"] == id_client

        # Bad input: named, nothing called.
        no_country = run_json(["clients", "add-balance", id_client, "--amount", "1",
                               "--product", "sms"], env, code=2)  # fmt: skip
        assert no_country["error"].startswith("--country:")
        bad = run_json(["clients", "add-balance", id_client, "--amount", "1", "--product", "fax"],
                       env, code=2)  # fmt: skip
        assert bad["error"].startswith("--product:")
        assert run_json(["clients", "show", "nosuch00"], env, code=1)["error"]
        too_much = run_json(["clients", "remove-balance", id_client, "--amount", "99",
                             "--product", "sms", "--country", "chile"], env, code=1)  # fmt: skip
        assert "refused" in too_much["error"] or "failed" in too_much["error"]

        # The sandbox enforces the Subclient section: an SMS naming a subclient names the
        # destination's country.
        auth = (env["CONNECTUS_API_USER"], env["CONNECTUS_API_KEY"])
        sms = {"dst_number": CHILE, "sms_content": "x", "id_client": id_client}
        with stack.sandbox_client() as sandbox:
            for extra, reason in (({}, "required"), ({"id_country": 2}, "country of dst_number")):
                answer = sandbox.post("/api_v3/sms/send_individual", json={**sms, **extra},
                                      auth=auth)  # fmt: skip
                assert answer.status_code == 400 and answer.json()["field"] == "id_country"
                assert reason in answer.json()["error"]
        assert listed()["sms_balance"]["Chile"] == 3  # nothing charged

        # An SMS naming the subclient: the worker sends id_country, and the subclient's
        # Chilean balance pays.
        stack.start_worker_supervisor()
        job = run_json(["send", "sms", "--to", CHILE, "--text", "Hola", "--client", id_client],
                       env)  # fmt: skip
        producer = Producer(stack.settings)
        record = wait_for(
            lambda: r if (r := producer.get_status(job["job_id"])).state.value == "sent" else None,
            timeout_s=30, what="the subclient's SMS sent",
        )  # fmt: skip
        assert record.provider_id
        assert listed()["sms_balance"]["Chile"] == 2
