"""``connectus campaign send|preflight|list|status|pause|resume|cancel|report``.

Exit codes: 0 ok, 1 refused or failed, 2 bad input; with ``--json``, one JSON object.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from connectus_worker.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    JSON,
    TENANT,
    console,
    fail,
    iso_time,
    output,
    print_table,
    tenant_or_exit,
)

app = typer.Typer(help="Campaigns: one message template to a list of recipients.",
                  no_args_is_help=True)  # fmt: skip

ID = typer.Argument(..., help="The campaign id.")
CSV = typer.Option(..., "--csv", help="Write the CSV here ('-' = stdout).")
FILE = typer.Argument(..., exists=True, dir_okay=False, help="Recipients: .csv or .jsonl")
NAME = typer.Option(None, "--name", help="The campaign's name (preflight: the file's name).")
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
ACCOUNT = typer.Option(None, "--account", help="The Connectus account that sends it (default: "
                       "the tenant's, else the first of CONNECTUS_ACCOUNTS).")  # fmt: skip
DELIVERY = typer.Option(None, "--connectus-delivery/--no-connectus-delivery",
                        help="v3: put each released chunk in a Connectus delivery of its own "
                        "(grouped in Connectus's reports; lookups read delivery_info). "
                        "Default: off (docs/campaigns.md).")  # fmt: skip


def _accept(preview: bool) -> Any:
    """``preflight`` (``preview``: stores nothing) or ``send``; both take the options of
    :class:`campaign.options.CampaignOptions`, which validates them."""

    def command(
        ctx: typer.Context, file: Path = FILE, name: str | None = NAME, text: str = TEXT,
        subject: str | None = SUBJECT, kind: str = KIND, src: str | None = SRC,
        id_client: str | None = CLIENT, deliver_at: str | None = AT, window: str | None = WINDOW,
        max_lateness_s: int | None = LATE, transport: str | None = TRANSPORT,
        skip_invalid: bool = SKIP, force: bool = FORCE, no_balance: bool = NO_BALANCE,
        idempotency_key: str | None = KEY, connectus_delivery: bool | None = DELIVERY,
        account: str | None = ACCOUNT, tenant: str = TENANT, json_output: bool = JSON,
    ) -> None:  # fmt: skip
        from connectus_worker.campaign.options import CampaignOptions
        from connectus_worker.producers.campaign_plan import resolve

        if name is None and not preview:
            fail("--name: a campaign needs a name", json_output, code=EXIT_INVALID)
        # From a mapping: the command line's strings are the model's to check and name.
        options = CampaignOptions.model_validate(dict(
            name=name or file.stem, text=text, subject=subject, kind=kind, src=src,
            id_client=id_client, deliver_at=deliver_at, window=window,
            max_lateness_s=max_lateness_s, transport=transport, skip_invalid=skip_invalid,
            force=force, idempotency_key=idempotency_key, connectus_delivery=connectus_delivery,
            account=account,
        ))  # fmt: skip
        # Checked before a Connectus client is built for the balance.
        _checked(json_output, resolve, options, ctx.obj())
        producer = _producer(ctx, no_balance, json_output, tenant, account)
        if preview:
            plan = _checked(json_output, producer.preflight, file, options).to_json()
        else:
            plan = _send(producer, file, options, json_output)
        if json_output:
            output(plan, True)
        else:
            _print_plan(plan)
        if preview and plan["refusals"]:
            raise typer.Exit(EXIT_FAILED)

    return command


app.command("preflight", help="Check a recipient list: invalid rows, duplicates, segments, "
            "cost, balance, schedule.")(_accept(preview=True))  # fmt: skip
app.command("send", help="Accept a campaign: store its recipients and schedule it (progress "
            "bar while reading).")(_accept(preview=False))  # fmt: skip


def _send(producer: Any, file: Path, options: Any, as_json: bool) -> dict[str, Any]:
    """Accept the campaign, with an indeterminate progress bar (the row count is unknown
    until the file is read); its plan, without refusals, and its id."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("accepting"), BarColumn(), TextColumn("{task.fields[rows]} rows"),
                  TimeElapsedColumn(), disable=as_json, transient=True,
                  console=console(stderr=True)) as bar:  # fmt: skip
        task = bar.add_task("accept", total=None, rows=0)
        accepted = _checked(as_json, producer.send, file, options,
                            progress=lambda rows: bar.update(task, rows=rows))  # fmt: skip
    if not as_json:
        verb = "accepted" if accepted.created else "already accepted (same idempotency key)"
        console(stderr=True).print(f"campaign [bold]{accepted.campaign_id}[/bold] {verb}")
    return {"campaign_id": accepted.campaign_id, "created": accepted.created,
            **{k: v for k, v in accepted.plan.to_json().items() if k != "refusals"}}  # fmt: skip


def _producer(
    ctx: typer.Context, no_balance: bool, as_json: bool, tenant: str = "default",
    account: str | None = None,
) -> Any:  # fmt: skip
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
                console(stderr=True).print(f"[yellow]balance not checked:[/yellow] {exc}")
    # The lookup is the account's the options name (an unknown one is refused anyway).
    balance = None if lookup is None else (lambda _account: lookup)
    return CampaignProducer(settings, tenant=tenant_or_exit(tenant, as_json), balance=balance)


def _checked(as_json: bool, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn``; map the errors a user can fix to exit codes with a clear message."""
    from connectus_worker.campaign.store import CampaignConflict
    from connectus_worker.domain.validation import InvalidInput
    from connectus_worker.producers.campaign_control import CampaignNotFound, CampaignStateError
    from connectus_worker.producers.campaigns import CampaignRefused
    from connectus_worker.worker.connectus.errors import ConnectusError

    try:
        return fn(*args, **kwargs)
    except CampaignRefused as exc:
        if not as_json:
            _print_plan(exc.plan.to_json())
        fail(str(exc), as_json, code=EXIT_FAILED, plan=exc.plan.to_json())
    except (CampaignConflict, CampaignStateError, CampaignNotFound) as exc:
        fail(str(exc), as_json, code=EXIT_FAILED)
    except InvalidInput as exc:
        fail(str(exc), as_json, code=EXIT_INVALID,
             errors=[e.as_problem_param() for e in exc.errors])  # fmt: skip
    except ValueError as exc:
        fail(str(exc), as_json, code=EXIT_INVALID)
    except ConnectusError as exc:
        fail(f"Connectus balance lookup failed: {exc}", as_json, code=EXIT_FAILED)


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
    control = _control(ctx, tenant, json_output)
    rows = [control.status(c.campaign_id).to_json() for c in control.store.recent(limit=limit)
            if c.tenant == tenant]  # fmt: skip
    if json_output:
        output({"campaigns": rows}, True)
    else:
        _print_list(rows)


@app.command()
def status(
    ctx: typer.Context, campaign_id: str = ID,
    watch: bool = typer.Option(False, "--watch", help="Refresh until the campaign ends."),
    interval_s: float = typer.Option(2.0, "--interval", min=0.2, help="Refresh period (s)."),
    tenant: str = TENANT, json_output: bool = JSON,
) -> None:  # fmt: skip
    """Counts by state, rate, ETA, and the breaker and limiter state."""
    from connectus_worker.worker.accounts import accounts_status

    control = _control(ctx, tenant, json_output)
    settings = ctx.obj()
    while True:
        found = _checked(json_output, control.status, campaign_id)
        body = found.to_json()
        # The campaign's own account: its pauses and rates are the ones that hold it back.
        body["account"] = found.campaign.account or settings.account_names[0]
        every = accounts_status(settings, control.store.client)
        body["health"] = next((a for a in every if a["account"] == body["account"]), {})
        body["short_links"] = _short_links(settings, control, campaign_id)
        if json_output:
            output(body, True)
        else:
            _print_status(body)
        if not watch or body["state"] in ("finished", "cancelled"):
            return
        sys.stdout.flush()
        time.sleep(interval_s)  # a display refresh, not a wait for an event


#: The state changes an operator asks for: command → help.
TRANSITIONS = {
    "pause": "Stop releasing and sending; messages met by workers are parked.",
    "resume": "Resume a paused campaign, or start a late one.",
    "cancel": "Cancel: nothing more is sent (in-flight sends finish).",
}


def _transition(action: str) -> Any:
    def command(ctx: typer.Context, campaign_id: str = ID, tenant: str = TENANT,
                json_output: bool = JSON) -> None:  # fmt: skip
        control = _control(ctx, tenant, json_output)
        result = _checked(json_output, getattr(control, action), campaign_id)
        state = control.get(campaign_id).state.value
        output({"campaign_id": campaign_id, "action": action, "previous": result.state,
                "state": state}, json_output, title=f"campaign {action}")  # fmt: skip

    return command


for _action, _help in TRANSITIONS.items():
    app.command(_action, help=_help)(_transition(_action))


@app.command()
def report(ctx: typer.Context, campaign_id: str = ID, csv_path: Path = CSV,
           tenant: str = TENANT, json_output: bool = JSON) -> None:  # fmt: skip
    """One row per recipient: state, provider id, delivery status, error."""
    control = _control(ctx, tenant, json_output)
    _checked(json_output, control.get, campaign_id)  # before the file is created
    if str(csv_path) == "-":
        _checked(json_output, control.write_report, campaign_id, sys.stdout)
        return
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        rows = _checked(json_output, control.write_report, campaign_id, out)
    links = _short_links(ctx.obj(), control, campaign_id)
    output({"campaign_id": campaign_id, "rows": rows, "csv": str(csv_path),
            "short_links": links}, json_output, title="campaign report")  # fmt: skip


def _short_links(settings: Any, control: Any, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's short links with their clicks (``GET /api_v3/short_link/:id``);
    ``clicks`` is None without Connectus credentials or when the lookup fails."""
    links = [{"url": ref.url, "short_link": ref.short_link, "id": ref.id, "clicks": None}
             for ref in control.short_links(campaign_id)]  # fmt: skip
    if not links:
        return []
    from connectus_worker.config import ConfigError
    from connectus_worker.worker.app import build_client
    from connectus_worker.worker.connectus.errors import ConnectusError
    from connectus_worker.worker.connectus.short_links import clicks_of

    try:
        # The campaign's account made the links (worker.campaigns): its listing has them.
        client = build_client(settings, account=control.get(campaign_id).account)
    except ConfigError:
        return links
    with client:
        for link in links:
            with contextlib.suppress(ConnectusError):
                link["clicks"] = clicks_of(client, link["id"])
    return links


# --- how the commands print for people (--json prints the same data as one object) ---

STATE_ORDER = ("pending", "queued", "sending", "retrying", "sent", "unknown", "failed",
               "cancelled")  # fmt: skip


#: The plan's figures shown, in this order.
PLAN_KEYS = ("campaign_id", "kind", "transport", "rows", "valid", "invalid", "duplicates",
             "segments", "max_segments", "cost", "deliver_at", "window",
             "max_lateness_s")  # fmt: skip


def _print_plan(plan: Mapping[str, Any]) -> None:
    figures = [(key, plan[key]) for key in PLAN_KEYS if key in plan]
    for balance in plan.get("balances", []):
        available = "unknown" if balance["available"] is None else balance["available"]
        figures.append(("balance", f"{balance['source']}: {available}"))
    print_table(f"campaign {plan.get('name', '')}", ("field", "value"), figures, header=False)
    for title, key, columns in (
        ("invalid rows", "invalid_rows", ("line", "field", "reason")),
        ("duplicates (kept the first)", "duplicate_rows", ("line", "first_line")),
    ):
        if rows := plan.get(key):
            print_table(f"{title} (first {min(len(rows), 20)})", columns,
                        ([row[c] for c in columns] for row in rows[:20]))  # fmt: skip
    for refusal in plan.get("refusals", []):
        console().print(f"[red]refused:[/red] {refusal}")


def _print_list(rows: Sequence[Mapping[str, Any]]) -> None:
    print_table(
        "campaigns", ("campaign_id", "name", "kind", "state", "total", "done", "deliver_at"),
        ([row["campaign_id"], row["name"], row["kind"], row["state"], row["total"],
          sum(row["counts"].get(s, 0) for s in ("sent", "failed", "cancelled")),
          iso_time(row["deliver_at_ms"])] for row in rows),
    )  # fmt: skip


def _print_status(body: Mapping[str, Any]) -> None:
    state = body["state"] + (f" ({body['reason']})" if body.get("reason") else "")
    console().print(f"[bold]{body['name']}[/bold] {body['campaign_id']}: {state}")
    counts = body["counts"]
    console().print("  " + "  ".join(f"{s} {counts[s]}" for s in STATE_ORDER if counts.get(s)))
    rate = body.get("rate_per_s")
    eta = body.get("eta_s")
    console().print(f"  rate {rate if rate is not None else '-'}/s  ETA "
                  f"{_duration(eta) if eta is not None else '-'}  parked {body['parked']}  "
                  f"deliveries {body['deliveries']}")  # fmt: skip
    health = body.get("health") or {}
    breaker = health.get("breaker", {})
    rates = "  ".join(
        f"{r['product']} {float(r['rate_per_s']):.0f}/s" for r in health.get("rates", [])
    )
    paused = " ".join(str(s["scope"]) for s in breaker.get("scopes", []))
    console().print(
        f"  breaker {breaker.get('state', '?')}{f' ({paused})' if paused else ''}  {rates}"
    )
    for link in body.get("short_links") or []:
        clicks = link["clicks"] if link["clicks"] is not None else "?"
        console().print(f"  link {link['short_link']} → {link['url']}: {clicks} clicks")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
