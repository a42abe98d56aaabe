"""``connectus campaign send|preflight|list|status|pause|resume|cancel|report``.

``send`` and ``preflight`` take the same options; ``preflight`` stores
nothing. Every command takes ``--json`` and then prints one JSON object.
Exit codes: 0 ok, 1 refused or failed, 2 bad input.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from connectus_worker.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    TENANT_HELP,
    fail,
    output,
    tenant_or_exit,
)

app = typer.Typer(help="Campaigns: one message template to a list of recipients.",
                  no_args_is_help=True)  # fmt: skip

JSON = typer.Option(False, "--json", help="Print one JSON object.")
FILE = typer.Argument(..., exists=True, dir_okay=False, help="Recipients: .csv or .jsonl")
TEXT = typer.Option(..., "--text", help="Template, e.g. 'Hola {name}'.")
SUBJECT = typer.Option(None, "--subject", help="E-mail subject (may use fields).")
KIND = typer.Option("sms", "--kind", help="sms, email or whatsapp.")
SRC = typer.Option(None, "--src", help="Origin: WhatsApp src_number, or e-mail src_email.")
CLIENT = typer.Option(None, "--client", help="Charge this Connectus subclient (v3 only).")
AT = typer.Option(None, "--at", help="deliver_at: 'YYYY-MM-DD HH:MM[:SS]' local, or ISO 8601.")
WINDOW = typer.Option(None, "--window", help="Daily send window, local time: 09:00-21:00.")
LATE = typer.Option(None, "--max-lateness", help="Seconds after --at it may still start.")
TRANSPORT = typer.Option(None, "--transport", help="v1_bulk (SMS default) or v3.")
SKIP = typer.Option(False, "--skip-invalid", help="Skip bad rows (reported) instead of failing.")
FORCE = typer.Option(False, "--force", help="Send even if the cost exceeds the balance.")
NO_BALANCE = typer.Option(False, "--no-balance", help="Don't ask Connectus for the balance.")
KEY = typer.Option(None, "--idempotency-key", help="Submitting twice creates one campaign.")
ID = typer.Argument(..., help="The campaign id.")
CSV = typer.Option(..., "--csv", help="Write the CSV here ('-' = stdout).")
TENANT = typer.Option("default", "--tenant", help=TENANT_HELP)
ACCOUNT = typer.Option(None, "--account", help="The Connectus account that sends it (default: "
                       "the tenant's, else the first of CONNECTUS_ACCOUNTS).")  # fmt: skip
DELIVERY = typer.Option(None, "--connectus-delivery/--no-connectus-delivery",
                        help="v3: put each released chunk in a Connectus delivery of its own "
                        "(grouped in Connectus's reports; lookups read delivery_info). "
                        "Default: off (docs/campaigns.md).")  # fmt: skip


def _options(settings: Any, name: str, text: str, subject: str | None, kind: str,
             src: str | None, client: str | None, at: str | None, window: str | None,
             late: int | None, transport: str | None, skip: bool, force: bool,
             key: str | None, connectus_delivery: bool | None = None,
             account: str | None = None) -> Any:  # fmt: skip
    from connectus_worker.campaign.options import CampaignOptions
    from connectus_worker.producers.campaign_plan import resolve

    # --kind and --transport stay text: the options' model names a bad one like the
    # others. Checked here, before a Connectus client is built for the balance.
    options = CampaignOptions(
        name=name, text=text, subject=subject, kind=kind, src=src,
        id_client=client, deliver_at=at, window=window, max_lateness_s=late,
        transport=transport, skip_invalid=skip, force=force, idempotency_key=key,
        connectus_delivery=connectus_delivery, account=account,
    )  # fmt: skip
    resolve(options, settings)
    return options


def _producer(
    ctx: typer.Context, no_balance: bool, as_json: bool, tenant: str = "default",
    account: str | None = None,
) -> Any:  # fmt: skip
    from connectus_worker.cli.common import err_console
    from connectus_worker.config import ConfigError
    from connectus_worker.producers.campaigns import CampaignProducer

    settings = ctx.obj()
    lookup = None
    if not no_balance:
        try:
            from connectus_worker.worker.app import build_client
            from connectus_worker.worker.connectus.balances import BalanceLookup

            # The balance of the account that will send it (an unknown one is refused
            # by the options' validation, naming the field).
            own = account or settings.account_for(tenant)
            if own in settings.account_names:
                lookup = BalanceLookup(build_client(settings, account=own))
        except ConfigError as exc:
            if not as_json:
                err_console.print(f"[yellow]balance not checked:[/yellow] {exc}")
    return CampaignProducer(settings, tenant=tenant_or_exit(tenant, as_json), balance=lookup)


def _checked(as_json: bool, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn``; map the errors a user can fix to exit codes with a clear message."""
    from connectus_worker.campaign.store import CampaignConflict
    from connectus_worker.cli.campaign_view import print_plan
    from connectus_worker.domain.validation import InvalidInput
    from connectus_worker.producers.campaign_control import CampaignNotFound, CampaignStateError
    from connectus_worker.producers.campaigns import CampaignRefused
    from connectus_worker.worker.connectus.errors import ConnectusError

    try:
        return fn(*args, **kwargs)
    except (InvalidInput, ValueError) as exc:
        if isinstance(exc, CampaignRefused):
            if as_json:
                fail(str(exc), True, code=EXIT_FAILED, plan=exc.plan.to_json())
            print_plan(exc.plan.to_json())
            fail(str(exc), False, code=EXIT_FAILED)
        if isinstance(exc, CampaignConflict | CampaignStateError):
            fail(str(exc), as_json, code=EXIT_FAILED)
        if isinstance(exc, InvalidInput):
            fail(str(exc), as_json, code=EXIT_INVALID,
                 errors=[e.as_problem_param() for e in exc.errors])  # fmt: skip
        fail(str(exc), as_json, code=EXIT_INVALID)
    except CampaignNotFound as exc:
        fail(str(exc), as_json, code=EXIT_FAILED)
    except ConnectusError as exc:
        fail(f"Connectus balance lookup failed: {exc}", as_json, code=EXIT_FAILED)


@app.command()
def preflight(
    ctx: typer.Context, file: Path = FILE, text: str = TEXT, name: str | None = None,
    subject: str | None = SUBJECT, kind: str = KIND, src: str | None = SRC,
    client: str | None = CLIENT, at: str | None = AT, window: str | None = WINDOW,
    max_lateness: int | None = LATE, transport: str | None = TRANSPORT, skip_invalid: bool = SKIP,
    force: bool = FORCE, no_balance: bool = NO_BALANCE, json_output: bool = JSON,
) -> None:  # fmt: skip
    """Check a recipient list: invalid rows, duplicates, segments, cost, balance, schedule."""
    from connectus_worker.cli.campaign_view import print_plan

    options = _checked(json_output, _options, ctx.obj(), name or file.stem, text, subject, kind,
                       src, client, at, window, max_lateness, transport, skip_invalid, force,
                       None)  # fmt: skip
    producer = _producer(ctx, no_balance, json_output)
    plan = _checked(json_output, producer.preflight, file, options).to_json()
    if json_output:
        output(plan, True)
    else:
        print_plan(plan)
    if plan["refusals"]:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def send(
    ctx: typer.Context, file: Path = FILE, name: str = typer.Option(..., "--name"),
    text: str = TEXT, subject: str | None = SUBJECT, kind: str = KIND, src: str | None = SRC,
    client: str | None = CLIENT, at: str | None = AT, window: str | None = WINDOW,
    max_lateness: int | None = LATE, transport: str | None = TRANSPORT, skip_invalid: bool = SKIP,
    force: bool = FORCE, no_balance: bool = NO_BALANCE, idempotency_key: str | None = KEY,
    tenant: str = TENANT, connectus_delivery: bool | None = DELIVERY, json_output: bool = JSON,
    account: str | None = ACCOUNT,
) -> None:  # fmt: skip
    """Accept a campaign: store its recipients and schedule it (progress bar while reading)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from connectus_worker.cli.campaign_view import print_plan
    from connectus_worker.cli.common import err_console

    options = _checked(json_output, _options, ctx.obj(), name, text, subject, kind, src, client,
                       at, window, max_lateness, transport, skip_invalid, force,
                       idempotency_key, connectus_delivery=connectus_delivery,
                       account=account)  # fmt: skip
    producer = _producer(ctx, no_balance, json_output, tenant, account)
    with Progress(TextColumn("accepting"), BarColumn(), TextColumn("{task.fields[rows]} rows"),
                  TimeElapsedColumn(), disable=json_output, transient=True,
                  console=err_console) as bar:  # fmt: skip
        # The row count is unknown until the file is read: an indeterminate bar.
        task = bar.add_task("accept", total=None, rows=0)
        accepted = _checked(json_output, producer.send, file, options,
                            progress=lambda rows: bar.update(task, rows=rows))  # fmt: skip
    body = {"campaign_id": accepted.campaign_id, "created": accepted.created,
            **{k: v for k, v in accepted.plan.to_json().items() if k != "refusals"}}  # fmt: skip
    if json_output:
        output(body, True)
        return
    print_plan(body)
    verb = "accepted" if accepted.created else "already accepted (same idempotency key)"
    err_console.print(f"campaign [bold]{accepted.campaign_id}[/bold] {verb}")


def _control(ctx: typer.Context, tenant: str, as_json: bool) -> Any:
    from connectus_worker.campaign.store import CampaignStore
    from connectus_worker.ledger.keys import Keys
    from connectus_worker.producers.campaign_control import CampaignControl
    from connectus_worker.redis import connect

    settings = ctx.obj()
    store = CampaignStore(connect(settings), Keys(settings.key_prefix),
                          ttl_s=settings.campaign_ttl_s, job_ttl_s=settings.job_ttl_s)  # fmt: skip
    return CampaignControl(store, tenant=tenant_or_exit(tenant, as_json))


@app.command("list")
def list_(ctx: typer.Context, limit: int = typer.Option(50, min=1, max=1000),
          tenant: str = TENANT, json_output: bool = JSON) -> None:  # fmt: skip
    """The tenant's newest campaigns, with their state and progress."""
    from connectus_worker.cli.campaign_view import print_list

    control = _control(ctx, tenant, json_output)
    rows = [control.status(c.campaign_id).to_json() for c in control.store.recent(limit=limit)
            if c.tenant == tenant]  # fmt: skip
    if json_output:
        output({"campaigns": rows}, True)
    else:
        print_list(rows)


@app.command()
def status(
    ctx: typer.Context, campaign_id: str = ID,
    watch: bool = typer.Option(False, "--watch", help="Refresh until the campaign ends."),
    interval_s: float = typer.Option(2.0, "--interval", min=0.2, help="Refresh period (s)."),
    tenant: str = TENANT, json_output: bool = JSON,
) -> None:  # fmt: skip
    """Counts by state, rate, ETA, and the breaker and limiter state."""
    from connectus_worker.cli.campaign_view import health, print_status

    control = _control(ctx, tenant, json_output)
    settings = ctx.obj()
    while True:
        found = _checked(json_output, control.status, campaign_id)
        body = found.to_json()
        # The campaign's own account: its pauses and rates are the ones that hold it back.
        body["account"] = found.campaign.account or settings.account_names[0]
        body["health"] = health(settings, control.store.client, body["account"])
        body["short_links"] = _short_links(settings, control, campaign_id)
        if json_output:
            output(body, True)
        else:
            print_status(body)
        if not watch or body["state"] in ("finished", "cancelled"):
            return
        sys.stdout.flush()
        time.sleep(interval_s)  # a display refresh, not a wait for an event


def _transition(
    ctx: typer.Context, campaign_id: str, action: str, tenant: str, as_json: bool
) -> None:
    control = _control(ctx, tenant, as_json)
    result = _checked(as_json, getattr(control, action), campaign_id)
    state = control.get(campaign_id).state.value
    output({"campaign_id": campaign_id, "action": action, "previous": result.state,
            "state": state}, as_json, title=f"campaign {action}")  # fmt: skip


@app.command()
def pause(ctx: typer.Context, campaign_id: str = ID, tenant: str = TENANT,
          json_output: bool = JSON) -> None:  # fmt: skip
    """Stop releasing and sending; messages met by workers are parked."""
    _transition(ctx, campaign_id, "pause", tenant, json_output)


@app.command()
def resume(ctx: typer.Context, campaign_id: str = ID, tenant: str = TENANT,
          json_output: bool = JSON) -> None:  # fmt: skip
    """Resume a paused campaign, or start a late one."""
    _transition(ctx, campaign_id, "resume", tenant, json_output)


@app.command()
def cancel(ctx: typer.Context, campaign_id: str = ID, tenant: str = TENANT,
          json_output: bool = JSON) -> None:  # fmt: skip
    """Cancel: nothing more is sent (in-flight sends finish)."""
    _transition(ctx, campaign_id, "cancel", tenant, json_output)


@app.command()
def report(
    ctx: typer.Context, campaign_id: str = ID,
    csv_path: Path = CSV,
    tenant: str = TENANT,
    json_output: bool = JSON,
) -> None:  # fmt: skip
    """One row per recipient: state, provider id, delivery status, error."""
    control = _control(ctx, tenant, json_output)
    _checked(json_output, control.get, campaign_id)  # before the file is created
    if str(csv_path) == "-":
        rows = _checked(json_output, control.write_report, campaign_id, sys.stdout)
        return
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        rows = _checked(json_output, control.write_report, campaign_id, out)
    links = _short_links(ctx.obj(), control, campaign_id)
    output({"campaign_id": campaign_id, "rows": rows, "csv": str(csv_path),
            "short_links": links}, json_output, title="campaign report")  # fmt: skip


def _short_links(settings: Any, control: Any, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's short links with their clicks (``GET /api_v3/short_link/:id``);
    ``clicks`` is None without Connectus credentials or when the lookup fails."""
    refs = control.short_links(campaign_id)
    if not refs:
        return []
    from connectus_worker.config import ConfigError
    from connectus_worker.worker.connectus.errors import ConnectusError

    client = None
    try:
        from connectus_worker.worker.app import build_client
        from connectus_worker.worker.connectus.short_links import clicks_of

        # The campaign's account made the links (worker.campaigns): its listing has them.
        client = build_client(settings, account=control.get(campaign_id).account)
    except ConfigError:
        pass
    links = []
    for ref in refs:
        clicks = None
        if client is not None:
            try:
                clicks = clicks_of(client, ref.id)
            except ConnectusError:
                clicks = None
        links.append({"url": ref.url, "short_link": ref.short_link, "id": ref.id,
                      "clicks": clicks})  # fmt: skip
    if client is not None:
        client.close()
    return links
