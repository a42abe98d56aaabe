"""One row of ``bench/results.json`` and the percentile its latency fields use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass
class Result:
    """One row of results.json (field names and units as documented there)."""

    name: str
    system: str
    latency_ms: float | None
    processes: int | None
    messages: int
    msgs_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_s_per_1k: float | None = None
    peak_rss_mb: float | None = None
    redis_cmds_per_msg: float | None = None
    redis_bytes_per_recipient: float | None = None
    # Not part of results.json: the extras written to details.json.
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        def r(x: float | None, nd: int) -> float | None:
            return None if x is None else round(x, nd)

        return {
            "name": self.name,
            "system": self.system,
            "latency_ms": self.latency_ms,
            "processes": self.processes,
            "messages": self.messages,
            "msgs_per_s": r(self.msgs_per_s, 1),
            "p50_ms": r(self.p50_ms, 1),
            "p99_ms": r(self.p99_ms, 1),
            "cpu_s_per_1k": r(self.cpu_s_per_1k, 3),
            "peak_rss_mb": r(self.peak_rss_mb, 1),
            "redis_cmds_per_msg": r(self.redis_cmds_per_msg, 2),
            "redis_bytes_per_recipient": r(self.redis_bytes_per_recipient, 1),
        }


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
