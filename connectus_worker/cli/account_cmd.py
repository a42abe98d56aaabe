"""``connectus account``: who the credentials belong to and where Connectus sends its
webhooks (``GET /api_v3/account``). A hook URL carries its secret, so every query value
and any password are masked."""

from __future__ import annotations

from typing import Any

import typer

from connectus_worker.cli.common import JSON, output
from connectus_worker.cli.connectus_call import call_connectus


def safe_url(url: str | None) -> str | None:
    """``url`` with its password and every query value replaced by ``***``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")  # fmt: skip
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def account(ctx: typer.Context, json_output: bool = JSON) -> None:
    """The Connectus account: id, name, e-mail, origin numbers and webhook URLs."""
    found = call_connectus(ctx, json_output, lambda client: client.v3.account())
    raw: dict[str, Any] = dict(found.raw)
    numbers = raw.get("src_numbers")
    body = {
        "id_account": found.id_account,
        "name": found.name,
        "email": found.email,
        "country": raw.get("country"),
        "sms_status_hook_url": safe_url(found.sms_status_hook_url),
        "sms_incoming_hook_url": safe_url(found.sms_incoming_hook_url),
        "src_numbers": [str(n.get("src_number")) for n in numbers if isinstance(n, dict)]
        if isinstance(numbers, list) else [],
    }  # fmt: skip
    output(body, json_output, title="Connectus account")
