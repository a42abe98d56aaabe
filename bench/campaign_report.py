"""The campaign benchmarks' table, target lines and run metadata."""

from __future__ import annotations

from typing import Any

TARGETS = {
    "accept_s": 30.0,
    "accept_bytes": 300.0,
    "accept_vs_naive": 5.0,
    "bulk_per_s": 20_000.0,
}

# -- report -------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


COLUMNS = (
    ("scenario", "name"), ("system", "system"), ("proc", "processes"), ("msgs", "messages"),
    ("s", "seconds"), ("msg/s", "msgs_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
    ("CPU s/1k", "cpu_s_per_1k"), ("RSS MB", "peak_rss_mb"), ("cmds/msg", "redis_cmds_per_msg"),
    ("B/msg", "redis_bytes_per_recipient"),
)  # fmt: skip


def one_line(row: dict[str, Any]) -> str:
    return "  " + ", ".join(f"{title} {_fmt(row.get(key))}" for title, key in COLUMNS)


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for title, _ in COLUMNS]]
    cells += [[_fmt(r.get(key)) for _, key in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {r['name']}/{r['system']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def target_lines(rows: list[dict[str, Any]]) -> list[str]:
    """PASS/FAIL against the issue's targets, for the rows present."""
    by_name = {r["name"]: r for r in rows}
    out = []
    accept = by_name.get("campaign_accept_csv")
    if accept is not None:
        s, b = accept["seconds"], accept["redis_bytes_per_recipient"]
        scale = 1_000_000 / accept["messages"]
        cpu = (accept["cpu_s_per_1k"] or 0) * 1000
        out.append(
            f"accept 1M in <= {TARGETS['accept_s']:.0f} s: "
            f"{_pass(s * scale <= TARGETS['accept_s'])} ({s * scale:.1f} s per million; "
            f"{cpu:.1f} s of CPU per million, so {cpu:.0f} s on a core of its own)"
        )
        out.append(
            f"Redis per pending recipient <= {TARGETS['accept_bytes']:.0f} B: "
            f"{_pass(b is not None and b <= TARGETS['accept_bytes'])} ({b} B)"
        )
        naive = by_name.get("campaign_accept_naive")
        if naive is not None and naive["msgs_per_s"]:
            ratio = accept["msgs_per_s"] / naive["msgs_per_s"]
            out.append(
                f"accept >= {TARGETS['accept_vs_naive']:.0f}x the naive baseline: "
                f"{_pass(ratio >= TARGETS['accept_vs_naive'])} ({ratio:.1f}x)"
            )
    for row in rows:
        if row["name"].startswith("campaign_v1_bulk"):
            rate = row["msgs_per_s"] or 0
            out.append(
                f"{row['name']} >= {TARGETS['bulk_per_s']:,.0f} recipients/s: "
                f"{_pass(rate >= TARGETS['bulk_per_s'])} ({rate:,.0f}/s)"
            )
    return out


def _pass(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
