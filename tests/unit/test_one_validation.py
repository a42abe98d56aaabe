"""One validation: the same bad message gets the same field errors from every door.

The producer (``Producer.send_*``), the CLI (``connectus send ...``) and the
HTTP intake (``POST /v1/messages``) all go through :func:`domain.requests.parse_request`;
each row of the table is sent through all three, and the ``(field, reason)``
lists must be equal, and name the fields the row expects.
"""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest
import typer
from typer.testing import CliRunner

from connectus_worker.cli.common import EXIT_INVALID
from connectus_worker.cli.send import app as send_app
from connectus_worker.domain.validation import InvalidInput
from connectus_worker.producers.api import Producer
from tests.support.service import invalid_params, make_settings, service

pytestmark = pytest.mark.anyio

NUMBER = "+56 9 8765 4321"
#: A Redis that nothing listens on: a CLI run that got past validation would fail loudly.
NOWHERE = "redis://127.0.0.1:1/0"
#: The CLI's option for each field, per command; "priority": "bulk" is --bulk.
OPTIONS = {
    "dst_number": "--to", "dst_email": "--to", "number": "--to",
    "sms_content": "--text", "whatsapp_content": "--text", "message": "--text",
    "subject": "--subject", "email_content": "--html", "src_email": "--from",
    "src_number": "--src", "id_client": "--client", "id_delivery": "--delivery",
    "deliver_at": "--at", "max_age_s": "--max-age-s", "expires_at": "--expires-at",
    "group_name": "--group",
}  # fmt: skip
#: The producer's positional arguments, per kind (the rest are keywords).
POSITIONAL = {
    "sms": ["dst_number", "sms_content"],
    "otp": ["dst_number", "sms_content"],
    "email": ["dst_email", "subject", "email_content"],
    "otp_email": ["dst_email", "subject", "email_content"],
    "whatsapp": ["dst_number", "whatsapp_content"],
    "whatsapp_qr": ["number", "message"],
    "whatsapp_qr_group": ["group_name", "message"],
}

TABLE: list[tuple[str, dict[str, Any], set[str]]] = [
    ("sms", {"dst_number": "12345", "sms_content": "hola"}, {"dst_number"}),
    ("sms", {"dst_number": "abc", "sms_content": "   "}, {"dst_number", "sms_content"}),
    ("sms", {"dst_number": NUMBER, "sms_content": "x" * 1601}, {"sms_content"}),
    ("sms", {"dst_number": NUMBER, "sms_content": "hola", "deliver_at": "mañana"}, {"deliver_at"}),
    ("sms", {"dst_number": NUMBER, "sms_content": "hola", "id_client": ""}, {"id_client"}),
    ("sms", {"dst_number": NUMBER, "sms_content": "hola", "src_number": "12"}, {"src_number"}),
    ("sms", {"dst_number": NUMBER, "sms_content": "hola", "max_age_s": 0}, {"max_age_s"}),
    ("sms", {"dst_number": NUMBER, "sms_content": "hola", "max_age_s": 60,
             "expires_at": "2099-01-01T00:00:00Z"}, {"expires_at"}),
    ("sms", {"dst_number": NUMBER, "sms_content": "hola", "expires_at": "2099-01-01 10:00:00"},
     {"expires_at"}),
    ("otp", {"dst_number": "56", "sms_content": ""}, {"dst_number", "sms_content"}),
    ("email", {"dst_email": "not-an-email", "subject": "", "email_content": "<p>x</p>"},
     {"dst_email", "subject"}),
    ("email", {"dst_email": "a@example.com", "subject": "s", "email_content": "",
               "src_email": "x@"}, {"src_email", "email_content"}),
    ("otp_email", {"dst_email": "x@", "subject": "s", "email_content": "1"}, {"dst_email"}),
    ("whatsapp", {"dst_number": NUMBER, "whatsapp_content": "", "src_number": "abc"},
     {"whatsapp_content", "src_number"}),
    ("whatsapp_qr", {"number": "0", "message": ""}, {"number", "message"}),
    ("whatsapp_qr", {"number": NUMBER, "message": "hola", "deliver_at": "2020-01-01 10:00:00"},
     {"deliver_at"}),
    ("whatsapp_qr_group", {"group_name": " ", "message": ""}, {"group_name", "message"}),
    ("whatsapp_qr_group", {"group_name": "ventas\nhola", "message": "hola"}, {"group_name"}),
    ("whatsapp_qr_group", {"group_name": "g" * 101, "message": "hola", "max_age_s": -1},
     {"group_name", "max_age_s"}),
]  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def from_producer(kind: str, fields: dict[str, Any]) -> list[tuple[str, str]]:
    producer = Producer(make_settings(), redis_client=fakeredis.FakeRedis())
    args = [fields[name] for name in POSITIONAL[kind]]
    options = {k: v for k, v in fields.items() if k not in POSITIONAL[kind]}
    with pytest.raises(InvalidInput) as caught:
        getattr(producer, f"send_{kind}")(*args, **options)
    assert producer.redis.dbsize() == 0
    return [(error.field, error.reason) for error in caught.value.errors]


def from_cli(kind: str, fields: dict[str, Any]) -> list[tuple[str, str]]:
    root = typer.Typer()

    @root.callback()
    def _settings(ctx: typer.Context) -> None:
        ctx.obj = lambda: make_settings(REDIS_URL=NOWHERE)

    root.add_typer(send_app, name="send")
    args = ["send", kind.replace("_", "-"), "--json"]
    for name, value in fields.items():
        args += [OPTIONS[name], str(value)]
    result = CliRunner().invoke(root, args)
    assert result.exit_code == EXIT_INVALID, result.output
    return [(e["name"], e["reason"]) for e in json.loads(result.stdout)["errors"]]


async def from_intake(kind: str, fields: dict[str, Any]) -> list[tuple[str, str]]:
    async with service() as svc:
        response = await svc.send({"type": kind, **fields})
        assert svc.redis.dbsize() == 0
    return list(invalid_params(response).items())


# Sets are shown sorted: ids must not depend on the hash seed (pytest-xdist compares them).
@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    TABLE,
    ids=lambda v: str(sorted(v) if isinstance(v, set) else v)[:40],
)
async def test_the_same_bad_input_gets_the_same_field_errors_from_every_door(
    kind: str, fields: dict[str, Any], expected: set[str]
) -> None:
    producer = from_producer(kind, fields)
    assert {field for field, _ in producer} == expected
    assert all(reason for _, reason in producer)
    assert from_cli(kind, fields) == producer
    assert await from_intake(kind, fields) == producer
