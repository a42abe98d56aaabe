"""``connectus v1 send-sms|sms-status|send-email|send-email-bulk|email-status``: the legacy API.

For operators checking the account's v1 access (``/api_v1``) by hand: each command calls
Connectus once and prints its answer; no job, ledger, idempotency, retry, opt-out or rate
limit. Production sends go through ``connectus send`` and campaigns.
"""

from __future__ import annotations

from typing import Any

import typer

from connectus_worker.cli.common import JSON, checked
from connectus_worker.cli.connectus_call import reply

app = typer.Typer(help="Legacy v1 API calls for operators (direct, unqueued, not retried).",
                  no_args_is_help=True)  # fmt: skip

HTML = typer.Option(..., "--html", help="The e-mail body (HTML).")
SUBJECT = typer.Option(None, "--subject", help="The subject.")
SENDER = typer.Option(None, "--sender", help="The sender's display name.")
SRC = typer.Option(None, "--from", help="A validated origin address (default: "
                   "CONNECTUS_DEFAULT_SRC_EMAIL).")  # fmt: skip
AT_HELP = "When Connectus sends it, account-local 'YYYY-MM-DD HH:MM:SS' (default: now)."
TO_MANY = typer.Option(..., "--to", help="A destination address (repeat it).")
BULK_NAME = typer.Option("connectus v1 send-email-bulk", "--name", help="The delivery's name.")


def _sent(id_name: str) -> Any:
    """The view of a send's answer: its id (named as v1 names it) and status."""
    return lambda result: {id_name: result.provider_id, "status": result.status}


@app.command("send-sms")
def send_sms(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="The destination number (E.164)."),
    text: str = typer.Option(..., "--text", help="The SMS text."),
    json_output: bool = JSON,
) -> None:
    """``POST send_sms``: one SMS, sent now; prints its id_sms."""
    from connectus_worker.domain.validation import check_content, normalize_number

    dst = checked(json_output, normalize_number, to, field="--to")
    content = checked(json_output, check_content, text, field="--text")
    reply(ctx, json_output, "v1 SMS sent",
          lambda c: c.v1.send_sms(dst_number=dst, sms_content=content),
          _sent("id_sms"))  # fmt: skip


@app.command("sms-status")
def sms_status(
    ctx: typer.Context,
    id_sms: str = typer.Argument(..., help="The id_sms a send answered."),
    json_output: bool = JSON,
) -> None:
    """``GET check_sms_status``: one SMS's platform status."""
    reply(ctx, json_output, f"v1 SMS {id_sms}", lambda c: c.v1.check_sms_status(id_sms=id_sms))


def _email(ctx: typer.Context, to: list[str], html: str, src: str | None,
           as_json: bool) -> tuple[list[str], str, str | None]:  # fmt: skip
    """The addresses, body and origin (default CONNECTUS_DEFAULT_SRC_EMAIL), checked as for
    a send; a bad one exits 2 naming its option."""
    from connectus_worker.domain.validation import check_content, normalize_email

    dsts = [checked(as_json, normalize_email, t, field="--to") for t in to]
    content = checked(as_json, check_content, html, field="--html", max_chars=1_000_000)
    origin = src or ctx.obj().connectus_default_src_email
    if origin is not None:
        origin = checked(as_json, normalize_email, origin, field="--from")
    return dsts, content, origin


@app.command("send-email")
def send_email(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="The destination address."),
    html: str = HTML,
    subject: str | None = SUBJECT,
    sender: str | None = SENDER,
    src: str | None = SRC,
    json_output: bool = JSON,
) -> None:
    """``POST send_email``: one e-mail, sent now; prints its id_email."""
    (dst,), content, origin = _email(ctx, [to], html, src, json_output)
    reply(ctx, json_output, "v1 e-mail sent", lambda c: c.v1.send_email(
        dst_email=dst, email_content=content, subject=subject, sender=sender, src_email=origin),
        _sent("id_email"))  # fmt: skip


@app.command("send-email-bulk")
def send_email_bulk(
    ctx: typer.Context,
    to: list[str] = TO_MANY,
    html: str = HTML,
    subject: str | None = SUBJECT,
    sender: str | None = SENDER,
    src: str | None = SRC,
    name: str = BULK_NAME,
    deliver_at: str | None = typer.Option(None, "--at", help=AT_HELP),
    json_output: bool = JSON,
) -> None:
    """``POST send_email_bulk``: the same e-mail to each --to, as one delivery."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    dsts, content, origin = _email(ctx, to, html, src, json_output)
    when = deliver_at or datetime.now(ZoneInfo(ctx.obj().default_timezone)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    emails = [{k: v for k, v in (("dst_email", d), ("subject", subject), ("email_content", content),
                                 ("sender", sender)) if v is not None} for d in dsts]  # fmt: skip
    reply(ctx, json_output, "v1 e-mail bulk", lambda c: c.v1.send_email_bulk(
        emails=emails, delivery_name=name, deliver_at=when, src_email=origin))  # fmt: skip


@app.command("email-status")
def email_status(
    ctx: typer.Context,
    id_email: str = typer.Argument(..., help="The id_email a send answered."),
    json_output: bool = JSON,
) -> None:
    """``GET check_email_status_events``: status and ABIERTO/CLICKEADO events."""
    reply(ctx, json_output, f"v1 e-mail {id_email}",
          lambda c: c.v1.check_email_status_events(id_email=id_email))  # fmt: skip
