"""``connectus send sms|otp|email|otp-email|whatsapp|whatsapp-qr|whatsapp-qr-group``.

One command per kind of :data:`domain.models.KINDS`; its options are the fields of
that kind's request model (:mod:`domain.requests`), which validates them exactly as
for producers and the intake. The commands are made the first time ``send`` is
used, so that ``connectus --help`` imports no pydantic (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
from typing import Any, get_args

import typer
import typer.main
from typer.core import TyperGroup

from connectus_worker.cli.common import (
    EXIT_INVALID,
    JSON,
    TENANT,
    command_of,
    fail,
    output,
    tenant_or_exit,
)

#: The option of each request field (its help is the field's description). ``priority``
#: is the ``--bulk`` flag.
FLAGS = {
    "dst_number": "--to", "number": "--to", "dst_email": "--to", "group_name": "--group",
    "sms_content": "--text", "whatsapp_content": "--text", "message": "--text",
    "subject": "--subject", "email_content": "--html", "src_email": "--from",
    "src_number": "--src", "id_client": "--client", "id_delivery": "--delivery",
    "deliver_at": "--at", "max_age_s": "--max-age-s", "expires_at": "--expires-at",
    "account": "--account", "priority": "--bulk",
}  # fmt: skip

#: Each command's help, by kind.
HELP = {
    "sms": "Queue an SMS.",
    "otp": "Queue an OTP SMS on the OTP queue.",
    "email": "Queue an e-mail.",
    "otp_email": "Queue an OTP e-mail on the OTP queue.",
    "whatsapp": "Queue a WhatsApp message (v3 API).",
    "whatsapp_qr": "Queue a message through the WhatsApp QR API.",
    "whatsapp_qr_group": "Queue a message to a WhatsApp group through the QR API "
    "(send-message-to-group).",
}


class KindCommands(TyperGroup):
    """``send``'s group: its commands come from :func:`commands`."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(commands().commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return commands().commands.get(cmd_name)


app = typer.Typer(cls=KindCommands, help="Queue one message; prints its job id.",
                  no_args_is_help=True)  # fmt: skip


@functools.cache
def commands() -> Any:
    """A group of one command per kind, named as the kind with dashes (``otp-email``)."""
    from connectus_worker.domain.models import KINDS
    from connectus_worker.domain.requests import SendRequest

    models = {get_args(m.model_fields["type"].annotation)[0]: m for m in get_args(SendRequest)}
    kinds = typer.Typer()
    for kind in KINDS:
        kinds.command(kind.replace("_", "-"), help=HELP[kind])(_command(kind, models[kind]))
    return typer.main.get_command(kinds)


def _command(kind: str, model: Any) -> Any:
    """``kind``'s command: the options of ``model``'s fields, then --key, --tenant, --json."""
    params: dict[str, tuple[Any, Any]] = {}
    fields = sorted(model.model_fields.items(), key=lambda field: not field[1].is_required())
    for name, info in fields:
        if name == "priority":
            if "bulk" in get_args(info.annotation):  # not for an OTP
                params[name] = (bool, typer.Option(False, FLAGS[name], help=info.description))
        elif name != "type":
            required = info.is_required()
            annotation = float if name == "max_age_s" else str
            params[name] = (annotation if required else annotation | None, typer.Option(
                ... if required else None, FLAGS[name], help=info.description))  # fmt: skip
    params["key"] = (str | None, typer.Option(
        None, "--key", help="Idempotency key: the same key twice creates one job."))  # fmt: skip
    params["tenant"] = (str, TENANT)
    params["json_output"] = (bool, JSON)
    return command_of(params, functools.partial(_enqueue, kind=kind))


def _enqueue(ctx: typer.Context, *, kind: str, key: str | None, tenant: str, json_output: bool,
             **fields: Any) -> None:  # fmt: skip
    """Queue one ``kind`` message: ``fields`` are the request model's (None = absent)."""
    from connectus_worker.domain.validation import InvalidInput
    from connectus_worker.ledger.jobs import IdempotencyConflict
    from connectus_worker.producers.api import Producer

    producer = Producer(ctx.obj(), tenant=tenant_or_exit(tenant, json_output))
    if fields.pop("priority", False):
        fields["priority"] = "bulk"
    try:
        job_id = producer.send(kind, fields, key)
    except InvalidInput as exc:
        fail(str(exc), json_output, code=EXIT_INVALID,
             errors=[e.as_problem_param() for e in exc.errors])  # fmt: skip
    except IdempotencyConflict as exc:
        fail(str(exc), json_output, code=EXIT_INVALID, job_id=exc.job_id)
    output({"job_id": job_id}, json_output, title="queued")
