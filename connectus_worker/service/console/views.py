"""Rendering: the Jinja2 environment (templates shipped in the package), filters, and
the answers every console page shares (a page, a refusal, a redirect)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from connectus_worker.ledger.history import Bucket

TEMPLATES = files("connectus_worker.service.console") / "templates"
STATIC = files("connectus_worker.service.console") / "static"
#: No script, style or form target outside the console itself: nothing from a CDN.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(ms: int | float | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def chart(buckets: list[Bucket], *, width: int = 720, height: int = 120) -> dict[str, Any]:
    """Stacked bars (sent, failed, unknown) as SVG rectangles: x, y, w, h per bar part."""
    peak = max((b.sent + b.failed + b.unknown for b in buckets), default=0) or 1
    step = width / max(len(buckets), 1)
    bars = []
    for i, b in enumerate(buckets):
        y = float(height)
        parts = []
        for name, value in (("sent", b.sent), ("failed", b.failed), ("unknown", b.unknown)):
            h = value / peak * height
            y -= h
            if value:
                parts.append({"cls": name, "y": round(y, 1), "h": round(h, 1)})
        bars.append({"x": round(i * step, 1), "w": round(max(step - 1, 1), 1), "parts": parts,
                     "bucket": b})  # fmt: skip
    return {"bars": bars, "width": width, "height": height, "peak": peak,
            "totals": {k: sum(getattr(b, k) for b in buckets)
                       for k in ("sent", "failed", "unknown")}}  # fmt: skip


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = _when
_env.filters["duration"] = _duration
_env.globals["chart"] = chart


def render(name: str, **context: Any) -> str:
    """A template's HTML (``make bench`` times the overview's render with it)."""
    return _env.get_template(name).render(**context)


def page(name: str, status: int = 200, **context: Any) -> Response:
    return HTMLResponse(render(name, **context), status_code=status,
                        headers=SECURITY_HEADERS)  # fmt: skip


def refused(status: int, reason: str, **context: Any) -> Response:
    """An error page (the status and the reason, never a traceback)."""
    return page("error.html", status, code=status, reason=reason, **context)


def back(path: str, **query: str) -> Response:
    """303 to ``path`` (after a POST: a reload does not repeat the action)."""
    suffix = f"?{urlencode(query)}" if query else ""
    return RedirectResponse(f"/ui{path}{suffix}", status_code=303, headers=SECURITY_HEADERS)
