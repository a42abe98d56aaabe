"""``connectus clients list|show|create|update|add-balance|remove-balance``: subclients.

Subclients (``/api_v3/clients``) are accounting accounts whose balance sends naming them
(``--client``) spend. SMS balance is per destination country, so an SMS balance move
names it (``--country chile`` or its id, ``1``).
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer

from connectus_worker.cli.common import EXIT_INVALID, JSON, fail, output, print_table
from connectus_worker.cli.connectus_call import call_connectus, reply

app = typer.Typer(help="Subclients: accounts whose balance sends can be charged to.",
                  no_args_is_help=True)  # fmt: skip

ID = typer.Argument(..., help="The subclient's id (its id_unique).")


def _client_json(client: Any) -> dict[str, Any]:
    """The subclient and its balances (those the answer shows)."""
    # GET /clients/:id answers one figure in "balance"; a listed client, an object.
    listed = client.raw.get("balance")
    whatsapp = listed.get("whatsapp_balance") if isinstance(listed, dict) else None
    balances = {"balance": client.balance, "sms_balance": _per_country(client.sms_balances),
                "email_balance": client.email_balance,
                "whatsapp_balance": whatsapp if isinstance(whatsapp, int) else None}  # fmt: skip
    return {"id_unique": client.id_unique, "name": client.name,
            **{k: v for k, v in balances.items() if v not in (None, {})}}  # fmt: skip


def _per_country(balances: Any) -> dict[str, int]:
    return {b.country_name or str(b.id_country): b.balance for b in balances}


@app.command("list")
def list_(ctx: typer.Context, json_output: bool = JSON) -> None:
    """Every subclient with its balances, and the unassigned SMS balance per country."""
    listing = call_connectus(ctx, json_output, lambda c: c.v3.list_clients())
    clients = [_client_json(c) for c in listing.clients]
    free = _per_country(listing.free_sms_balance_by_country)
    raw = listing.raw or {}
    data = raw["data"] if isinstance(raw.get("data"), dict) else raw
    body = {"free_sms_balance_by_country": free, "clients": clients,
            "free_email_balance": data.get("free_email_balance"),
            "free_whatsapp_balance": data.get("free_whatsapp_balance")}  # fmt: skip
    if json_output:
        output(body, True)
        return
    rows = [(c["id_unique"], c["name"], _by_country(c.get("sms_balance", {})),
             c.get("email_balance"), c.get("whatsapp_balance")) for c in clients]  # fmt: skip
    print_table("subclients", ("id", "name", "sms (by country)", "email", "whatsapp"), rows)
    typer.echo(f"unassigned SMS: {_by_country(free)}; e-mail: {body['free_email_balance']}; "
               f"WhatsApp: {body['free_whatsapp_balance']}")  # fmt: skip


@app.command()
def show(ctx: typer.Context, id_client: str = ID, json_output: bool = JSON) -> None:
    """One subclient."""
    reply(ctx, json_output, f"subclient {id_client}",
          lambda c: c.v3.get_client(id_client=id_client), _client_json)  # fmt: skip


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="The subclient's name."),
    json_output: bool = JSON,
) -> None:
    """Create a subclient; prints its id."""
    _check_name(name, json_output)
    reply(ctx, json_output, "subclient created", lambda c: c.v3.create_client(name=name.strip()),
          _client_json)  # fmt: skip


@app.command()
def update(
    ctx: typer.Context,
    id_client: str = ID,
    name: str = typer.Option(..., "--name", help="The new name."),
    json_output: bool = JSON,
) -> None:
    """Rename a subclient."""
    _check_name(name, json_output)
    reply(ctx, json_output, "subclient updated",
          lambda c: c.v3.update_client(id_client=id_client, name=name.strip()),
          _client_json)  # fmt: skip


AMOUNT = typer.Option(..., "--amount", help="Units to move (SMS, e-mails or messages).")
PRODUCT = typer.Option(..., "--product", help="sms, email or whatsapp.")
COUNTRY = typer.Option(None, "--country",
                       help="SMS only: the country (chile, mexico... or its id, 1).")  # fmt: skip


def _balance_command(action: str) -> Any:
    def command(
        ctx: typer.Context, id_client: str = ID, amount: int = AMOUNT, product: str = PRODUCT,
        country: str | None = COUNTRY, json_output: bool = JSON,
    ) -> None:  # fmt: skip
        from connectus_worker.worker.connectus.enums import SubclientProduct

        def bad(message: str) -> NoReturn:
            fail(message, json_output, code=EXIT_INVALID)

        if amount <= 0:
            bad("--amount: must be a positive whole number")
        if product.upper() not in SubclientProduct.__members__:
            bad("--product: must be one of sms, email, whatsapp")
        kind = SubclientProduct[product.upper()]
        id_country = _country(country, json_output) if country is not None else None
        if kind is SubclientProduct.SMS and id_country is None:
            bad("--country: SMS balance is per country; name it (chile, 1...)")
        if kind is not SubclientProduct.SMS and id_country is not None:
            bad("--country: only SMS balance is per country")
        reply(ctx, json_output, f"subclient {action.replace('_', ' ')}",
              lambda c: getattr(c.v3, action)(id_client=id_client, amount=amount, product=kind,
                                              id_country=id_country),
              lambda ack: {"id_client": id_client, "action": action, "amount": amount,
                           "product": product.lower(),
                           "id_country": None if id_country is None else int(id_country),
                           "message": ack.message})  # fmt: skip

    return command


app.command("add-balance", help="Move balance from the account's unassigned balance to the "
            "subclient.")(_balance_command("add_balance"))  # fmt: skip
app.command("remove-balance", help="Move balance from the subclient back to the account's "
            "unassigned balance.")(_balance_command("remove_balance"))  # fmt: skip


def _country(text: str, as_json: bool) -> Any:  # noqa: RET503 - fail() never returns
    from connectus_worker.worker.connectus.enums import Country

    key = text.strip().upper().replace(" ", "_")
    if key.isdigit() and int(key) in {c.value for c in Country}:
        return Country(int(key))
    if key in Country.__members__:
        return Country[key]
    names = ", ".join(f"{c.name.lower()} ({c.value})" for c in Country)
    fail(f"--country: unknown country {text!r}; one of {names}", as_json, code=EXIT_INVALID)


def _check_name(name: str, as_json: bool) -> None:
    if not name.strip() or len(name) > 200:
        fail("--name: must be 1 to 200 characters, not blank", as_json, code=EXIT_INVALID)


def _by_country(balances: dict[str, int]) -> str:
    return ", ".join(f"{country} {n}" for country, n in balances.items() if n) or "0"
