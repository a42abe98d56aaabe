"""``connectus send sms|otp|email|otp-email|whatsapp|whatsapp-qr|whatsapp-qr-group``:
queue one message."""

from __future__ import annotations

from typing import Any

import typer

from connectus_worker.cli.common import EXIT_INVALID, TENANT_HELP, fail, output, tenant_or_exit

app = typer.Typer(help="Queue one message; prints its job id.", no_args_is_help=True)

KEY = typer.Option(None, "--key", help="Idempotency key: the same key twice creates one job.")
AT = typer.Option(
    None, "--at", help="Deliver at (ISO 8601 or 'YYYY-MM-DD HH:MM:SS'; naive = DEFAULT_TIMEZONE)."
)
JSON = typer.Option(False, "--json", help="Print one JSON object.")
MAX_AGE = typer.Option(
    None, "--max-age-s", help="Never send it later than this many seconds after it is due "
    "(default: MAX_MESSAGE_AGE_S, OTP_MAX_AGE_S for an OTP).",
)  # fmt: skip
EXPIRES = typer.Option(
    None, "--expires-at", help="Never send it after this time (ISO 8601 with an offset, "
    "e.g. 2030-01-15T12:00:00Z); not with --max-age-s.",
)  # fmt: skip
BULK = typer.Option(False, "--bulk", help="Use the bulk queue instead of the transactional one.")
CLIENT = typer.Option(None, "--client", help="Connectus subclient id (id_client).")
DELIVERY = typer.Option(None, "--delivery", help="Connectus delivery id (id_delivery).")
TENANT = typer.Option("default", "--tenant", help=TENANT_HELP)
ACCOUNT = typer.Option(
    None, "--account", help="The Connectus account that sends it (default: the tenant's, else "
    "the first of CONNECTUS_ACCOUNTS)."
)  # fmt: skip


def _enqueue(
    ctx: typer.Context, kind: str, as_json: bool, key: str | None, tenant: str, **fields: Any
) -> None:
    """Queue one ``kind`` message: ``fields`` are :mod:`domain.requests`'s (None = absent),
    validated there like every producer's and the intake's."""
    from connectus_worker.domain.validation import InvalidInput
    from connectus_worker.ledger.jobs import IdempotencyConflict
    from connectus_worker.producers.api import Producer

    producer = Producer(ctx.obj(), tenant=tenant_or_exit(tenant, as_json))
    if fields.pop("bulk", False):
        fields["priority"] = "bulk"
    try:
        job_id = producer.send(kind, fields, key)
    except InvalidInput as exc:
        fail(
            str(exc), as_json, code=EXIT_INVALID, errors=[e.as_problem_param() for e in exc.errors]
        )
    except IdempotencyConflict as exc:
        fail(str(exc), as_json, code=EXIT_INVALID, job_id=exc.job_id)
    output({"job_id": job_id}, as_json, title="queued")


@app.command()
def sms(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Destination number, international format."),
    text: str = typer.Option(..., "--text", help="Message content (160 characters per SMS)."),
    src: str | None = typer.Option(None, "--src", help="Source number or short code."),
    client: str | None = CLIENT,
    delivery: str | None = DELIVERY,
    key: str | None = KEY,
    tenant: str = TENANT,
    account: str | None = ACCOUNT,
    max_age: float | None = MAX_AGE,
    expires_at: str | None = EXPIRES,
    at: str | None = AT,
    bulk: bool = BULK,
    json_output: bool = JSON,
) -> None:
    """Queue an SMS."""
    _enqueue(ctx, "sms", json_output, key, tenant, account=account,
             dst_number=to, sms_content=text, src_number=src,
             id_client=client, id_delivery=delivery, deliver_at=at, bulk=bulk,
             max_age_s=max_age, expires_at=expires_at)  # fmt: skip


@app.command()
def otp(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Destination number, international format."),
    text: str = typer.Option(..., "--text", help="The OTP message; stored only as a hash."),
    key: str | None = KEY,
    tenant: str = TENANT,
    account: str | None = ACCOUNT,
    max_age: float | None = MAX_AGE,
    expires_at: str | None = EXPIRES,
    json_output: bool = JSON,
) -> None:
    """Queue an OTP SMS on the OTP queue."""
    _enqueue(ctx, "otp", json_output, key, tenant, account=account,
             dst_number=to, sms_content=text,
             max_age_s=max_age, expires_at=expires_at)  # fmt: skip


@app.command()
def email(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Destination address."),
    subject: str = typer.Option(..., "--subject", help="Subject line."),
    html: str = typer.Option(..., "--html", help="HTML content."),
    src: str | None = typer.Option(None, "--from", help="Validated origin address."),
    client: str | None = CLIENT,
    delivery: str | None = DELIVERY,
    key: str | None = KEY,
    tenant: str = TENANT,
    account: str | None = ACCOUNT,
    max_age: float | None = MAX_AGE,
    expires_at: str | None = EXPIRES,
    at: str | None = AT,
    bulk: bool = BULK,
    json_output: bool = JSON,
) -> None:
    """Queue an e-mail."""
    _enqueue(ctx, "email", json_output, key, tenant, account=account,
             dst_email=to, subject=subject,
             email_content=html, src_email=src, id_client=client, id_delivery=delivery,
             deliver_at=at, bulk=bulk, max_age_s=max_age, expires_at=expires_at)  # fmt: skip


@app.command("otp-email")
def otp_email(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Destination address."),
    subject: str = typer.Option(..., "--subject", help="Subject line."),
    html: str = typer.Option(..., "--html", help="HTML content with the code."),
    src: str | None = typer.Option(None, "--from", help="Validated origin address."),
    key: str | None = KEY,
    tenant: str = TENANT,
    account: str | None = ACCOUNT,
    max_age: float | None = MAX_AGE,
    expires_at: str | None = EXPIRES,
    json_output: bool = JSON,
) -> None:
    """Queue an OTP e-mail on the OTP queue."""
    _enqueue(ctx, "otp_email", json_output, key, tenant, account=account,
             dst_email=to, subject=subject,
             email_content=html, src_email=src, max_age_s=max_age,
             expires_at=expires_at)  # fmt: skip


@app.command()
def whatsapp(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Destination number."),
    text: str = typer.Option(..., "--text", help="Message content."),
    src: str | None = typer.Option(
        None,
        "--src",
        help="The account's WhatsApp origin number (default CONNECTUS_WHATSAPP_SRC_NUMBER).",
    ),
    client: str | None = CLIENT,
    delivery: str | None = DELIVERY,
    key: str | None = KEY,
    tenant: str = TENANT,
    account: str | None = ACCOUNT,
    max_age: float | None = MAX_AGE,
    expires_at: str | None = EXPIRES,
    at: str | None = AT,
    bulk: bool = BULK,
    json_output: bool = JSON,
) -> None:
    """Queue a WhatsApp message (v3 API)."""
    _enqueue(ctx, "whatsapp", json_output, key, tenant, account=account,
             dst_number=to, whatsapp_content=text,
             src_number=src, id_client=client, id_delivery=delivery, deliver_at=at, bulk=bulk,
             max_age_s=max_age, expires_at=expires_at)  # fmt: skip


@app.command("whatsapp-qr")
def whatsapp_qr(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Destination number."),
    text: str = typer.Option(..., "--text", help="Message content."),
    key: str | None = KEY,
    tenant: str = TENANT,
    account: str | None = ACCOUNT,
    max_age: float | None = MAX_AGE,
    expires_at: str | None = EXPIRES,
    at: str | None = AT,
    json_output: bool = JSON,
) -> None:
    """Queue a message through the WhatsApp QR API."""
    _enqueue(ctx, "whatsapp_qr", json_output, key, tenant, account=account,
             number=to, message=text, deliver_at=at,
             max_age_s=max_age, expires_at=expires_at)  # fmt: skip


@app.command("whatsapp-qr-group")
def whatsapp_qr_group(
    ctx: typer.Context,
    group: str = typer.Option(..., "--group", help="The group's name, as created."),
    text: str = typer.Option(..., "--text", help="Message content."),
    key: str | None = KEY,
    max_age: float | None = MAX_AGE,
    expires_at: str | None = EXPIRES,
    at: str | None = AT,
    bulk: bool = BULK,
    tenant: str = TENANT,
    account: str | None = ACCOUNT,
    json_output: bool = JSON,
) -> None:
    """Queue a message to a WhatsApp group through the QR API (send-message-to-group)."""
    _enqueue(ctx, "whatsapp_qr_group", json_output, key, tenant, account=account,
             group_name=group, message=text,
             deliver_at=at, bulk=bulk, max_age_s=max_age, expires_at=expires_at)  # fmt: skip
