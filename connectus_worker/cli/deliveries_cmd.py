"""``connectus deliveries create|show|update``: Connectus deliveries (``/api_v3/deliveries``).

A delivery is a named batch Connectus executes at its ``deliver_at`` (account-local
``YYYY-MM-DD HH:MM:SS``); messages sent with its id (``--delivery``) wait until then.
"""

from __future__ import annotations

import typer

from connectus_worker.cli.common import EXIT_INVALID, JSON, fail
from connectus_worker.cli.connectus_call import reply

app = typer.Typer(help="Connectus deliveries: named batches executed at deliver_at.",
                  no_args_is_help=True)  # fmt: skip

ID = typer.Argument(..., help="The delivery's id.")
AT_HELP = "When Connectus executes it, account-local 'YYYY-MM-DD HH:MM:SS'."


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="The delivery's name."),
    deliver_at: str = typer.Option(..., "--at", help=AT_HELP),
    product: str = typer.Option("sms", "--product", help="sms, whatsapp or email."),
    json_output: bool = JSON,
) -> None:
    """Create a delivery; prints its id."""
    from connectus_worker.worker.connectus.enums import DeliveryProduct

    if product.upper() not in DeliveryProduct.__members__:
        fail("--product: must be sms, whatsapp or email", json_output, code=EXIT_INVALID)
    if not name.strip():
        fail("--name: is empty", json_output, code=EXIT_INVALID)
    id_product = DeliveryProduct[product.upper()]
    reply(ctx, json_output, "delivery created", lambda c: c.v3.create_delivery(
        name=name.strip(), deliver_at=deliver_at, id_product=id_product))  # fmt: skip


@app.command()
def show(ctx: typer.Context, id_delivery: str = ID, json_output: bool = JSON) -> None:
    """One delivery: its name, deliver_at and status (EJECUTADO once executed)."""
    reply(ctx, json_output, f"delivery {id_delivery}",
          lambda c: c.v3.get_delivery(id_delivery=id_delivery))  # fmt: skip


@app.command()
def update(
    ctx: typer.Context,
    id_delivery: str = ID,
    name: str | None = typer.Option(None, "--name", help="The new name."),
    deliver_at: str | None = typer.Option(None, "--at", help=AT_HELP),
    json_output: bool = JSON,
) -> None:
    """Rename or reschedule a delivery not yet executed."""
    if name is None and deliver_at is None:
        fail("--name or --at: give at least one", json_output, code=EXIT_INVALID)
    reply(ctx, json_output, f"delivery {id_delivery}", lambda c: c.v3.update_delivery(
        id_delivery=id_delivery, name=name, deliver_at=deliver_at))  # fmt: skip
