"""``connectus qr ...``: the WhatsApp QR API's session and groups, each command one call
of :class:`worker.connectus.qr.QrApi`.

Sending to a group is a queued job like any other (``connectus send whatsapp-qr-group``).
The pairing QR grants the scanning phone's WhatsApp to the API's session: it is printed
or written (``--png``), never logged. Exit codes: 2 bad input, 1 refused or unreachable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from connectus_worker.cli.common import EXIT_INVALID, JSON, checked, fail, output, print_table
from connectus_worker.cli.connectus_call import call_connectus, reply

if TYPE_CHECKING:
    from connectus_worker.worker.connectus.answers import Ack, QrMessage

app = typer.Typer(help="The WhatsApp QR API: pairing and groups.", no_args_is_help=True)
groups = typer.Typer(help="WhatsApp groups of the QR session.", no_args_is_help=True)
app.add_typer(groups, name="groups")

NUMBERS = typer.Option(
    ..., "--number", "-n", help="A participant's number, international format; repeat it."
)
PNG = typer.Option(None, "--png", help="Write the QR to this PNG file instead of drawing it.")
GROUP = typer.Argument(..., help="The group's name (its subject), as created.")


def _group_name(name: str, as_json: bool) -> str:
    from connectus_worker.domain.request_fields import GROUP_NAME_MAX_CHARS
    from connectus_worker.domain.validation import check_single_line

    return str(checked(as_json, check_single_line, name, field="group",
                       max_chars=GROUP_NAME_MAX_CHARS))  # fmt: skip


def _numbers(ctx: typer.Context, numbers: list[str], as_json: bool) -> list[str]:
    """Each ``--number`` as Connectus writes numbers (E.164 digits); bad ones exit 2."""
    from connectus_worker.domain.validation import InvalidInput, normalize_number

    region = ctx.obj().default_region
    out, bad = [], []
    for number in numbers:
        try:
            out.append(normalize_number(number, field="number", default_region=region))
        except InvalidInput as exc:
            bad.append(f"{number!r} ({exc.reason})")
    if bad:
        fail(f"--number: not a valid number: {', '.join(bad)}", as_json, code=EXIT_INVALID)
    return out


def image_of(data: str) -> bytes | None:
    """The PNG or JPEG bytes when the /qr answer is an image (a ``data:image/...;base64,``
    URL, as some WhatsApp gateways answer), None when it is the pairing text (chosen)."""
    import base64
    import binascii

    head, sep, body = data.partition(",")
    if not (sep and head.startswith("data:image/") and head.endswith(";base64")):
        return None
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def _print_messages(title: str, rows: tuple[QrMessage, ...], as_json: bool) -> None:
    columns = ("message_id", "number", "from_me", "timestamp", "message")
    found = [{c: getattr(m, c) for c in columns} for m in rows]
    if as_json:
        output({"messages": found, "count": len(found)}, True)
    else:
        print_table(title, columns, ([m[c] for c in columns] for m in found))


# --- pairing ------------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context, json_output: bool = JSON) -> None:
    """Is the WhatsApp session paired? (GET /status)"""
    from connectus_worker.worker.qr_session import is_connected

    reply(ctx, json_output, "qr session", lambda c: c.qr.status(),
          lambda value: {"status": value, "connected": is_connected(value)})  # fmt: skip


@app.command()
def code(
    ctx: typer.Context,
    png: Path | None = PNG,
    scale: int = typer.Option(8, min=1, max=64, help="PNG pixels per QR module."),
    json_output: bool = JSON,
) -> None:
    """Show the pairing QR (GET /qr): scan it with the phone's WhatsApp, Linked devices."""
    import segno

    data = call_connectus(ctx, json_output, lambda c: c.qr.qr())
    image = image_of(data)  # some gateways answer the QR as a picture
    if image is None:
        try:
            qr = segno.make(data, micro=False)
        except segno.DataOverflowError:
            fail(f"the /qr answer is too long for a QR code ({len(data)} characters)",
                 json_output)  # fmt: skip
    elif png is None:
        fail("the /qr answer is an image, not the pairing text: write it with --png FILE",
             json_output)  # fmt: skip
    if png is not None:
        try:
            if image is None:
                qr.save(str(png), kind="png", scale=scale, border=4)
            else:
                png.write_bytes(image)
        except OSError as exc:
            fail(f"--png: cannot write {str(png)!r}: {exc.strerror}", json_output,
                 code=EXIT_INVALID)  # fmt: skip
        version = None if image is not None else qr.version
        output({"png": str(png), "version": version}, json_output, title="pairing QR")
    elif json_output:
        output({"qr": data, "version": qr.version}, True)
    else:
        qr.terminal(out=sys.stdout, compact=True)
        sys.stdout.write("Scan it with WhatsApp > Linked devices; 'connectus qr status' then "
                         "says CONNECTED.\n")  # fmt: skip


@app.command()
def messages(
    ctx: typer.Context,
    number: str = typer.Argument(..., help="The other party's number."),
    json_output: bool = JSON,
) -> None:
    """The last messages with a number (GET /get-last-messages)."""
    (dst,) = _numbers(ctx, [number], json_output)
    rows = call_connectus(ctx, json_output, lambda c: c.qr.last_messages(number=dst))
    _print_messages(f"last messages with {number}", rows, json_output)


# --- groups -------------------------------------------------------------------------


def _changed(group: str, answer: Ack) -> dict[str, Any]:
    shown = (answer.raw or {}).get("group")  # the sandbox's (chosen) answer shows the group
    more = {k: v for k, v in shown.items() if k != "name"} if isinstance(shown, dict) else {}
    return {"group": group, "success": answer.success, **more}


#: The participant commands: command → (QrApi method, title of the answer, help).
MEMBERS = {
    "create": ("create_group", "group created",
               "Create a group with these participants (POST /create-group)."),
    "add": ("add_participants", "participants added",
            "Add participants (POST /add-participants)."),
    "remove": ("remove_participants", "participants removed",
               "Remove participants (POST /remove-participants)."),
    "promote": ("make_group_admins", "admins added",
                "Make participants admins (POST /make-group-admins)."),
    "demote": ("demote_group_admins", "admins removed",
               "Take admin rights away (POST /demote-group-admins)."),
}  # fmt: skip


def _members(method: str, title: str) -> Callable[..., None]:
    def command(ctx: typer.Context, name: str = GROUP, numbers: list[str] = NUMBERS,
                json_output: bool = JSON) -> None:  # fmt: skip
        group = _group_name(name, json_output)
        dsts = _numbers(ctx, numbers, json_output)
        # create-group names its group "name"; the others, "group_name".
        named = {"name" if method == "create_group" else "group_name": group}
        reply(ctx, json_output, title, lambda c: getattr(c.qr, method)(**named, numbers=dsts),
              lambda answer: _changed(group, answer))  # fmt: skip

    return command


for _command, (_method, _title, _help) in MEMBERS.items():
    groups.command(_command, help=_help)(_members(_method, _title))


@groups.command("update")
def update(
    ctx: typer.Context,
    name: str = GROUP,
    subject: str | None = typer.Option(None, "--subject", help="New name of the group."),
    description: str | None = typer.Option(None, "--description", help="New description."),
    json_output: bool = JSON,
) -> None:
    """Rename the group or change its description (POST /update-group-info)."""
    group = _group_name(name, json_output)
    if subject is None and description is None:
        fail("give --subject or --description (or both)", json_output, code=EXIT_INVALID)
    new_subject = _group_name(subject, json_output) if subject is not None else None
    reply(ctx, json_output, "group updated", lambda c: c.qr.update_group_info(
        group_name=group, new_subject=new_subject, new_description=description),
        lambda answer: _changed(new_subject or group, answer))  # fmt: skip


@groups.command("invite")
def invite(ctx: typer.Context, name: str = GROUP, json_output: bool = JSON) -> None:
    """An invitation link to the group (GET /generate-invite-link)."""
    group = _group_name(name, json_output)
    reply(ctx, json_output, "invite link", lambda c: c.qr.generate_invite_link(group_name=group),
          lambda link: {"group": group, "invite_link": link})  # fmt: skip


@groups.command("messages")
def group_messages(ctx: typer.Context, name: str = GROUP, json_output: bool = JSON) -> None:
    """The group's last messages (GET /get-last-group-messages)."""
    group = _group_name(name, json_output)
    rows = call_connectus(ctx, json_output, lambda c: c.qr.last_group_messages(group_name=group))
    _print_messages(f"last messages of {group}", rows, json_output)
