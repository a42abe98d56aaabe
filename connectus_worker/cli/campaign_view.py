"""How campaign commands print for people (``--json`` prints the same data as one object).

Imported by the commands that print (rich is not needed for ``--json`` or ``--help``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectus_worker.cli.common import console, iso_time, print_table

STATE_ORDER = ("pending", "queued", "sending", "retrying", "sent", "unknown", "failed",
               "cancelled")  # fmt: skip


#: The plan's figures shown, in this order.
PLAN_KEYS = ("campaign_id", "kind", "transport", "rows", "valid", "invalid", "duplicates",
             "segments", "max_segments", "cost", "deliver_at", "window",
             "max_lateness_s")  # fmt: skip


def print_plan(plan: Mapping[str, Any]) -> None:
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


def print_list(rows: Sequence[Mapping[str, Any]]) -> None:
    print_table(
        "campaigns", ("campaign_id", "name", "kind", "state", "total", "done", "deliver_at"),
        ([row["campaign_id"], row["name"], row["kind"], row["state"], row["total"],
          sum(row["counts"].get(s, 0) for s in ("sent", "failed", "cancelled")),
          iso_time(row["deliver_at_ms"])] for row in rows),
    )  # fmt: skip


def print_status(body: Mapping[str, Any]) -> None:
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
