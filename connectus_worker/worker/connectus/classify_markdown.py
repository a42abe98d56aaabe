"""Markdown rendering of :mod:`worker.connectus.classify` (kept apart: presentation)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from connectus_worker.worker.connectus.classify import (
    BALANCE_TEXTS,
    HTTP,
    HTTP_OTHER_4XX,
    HTTP_OTHER_5XX,
    HTTP_REDIRECT,
    PLATFORM,
    QR_SESSION_STATUSES,
    SESSION_TEXTS,
    SMPP,
    SMPP_UNKNOWN,
    TRANSPORT,
    ErrorClass,
)


def _cell(error: ErrorClass | None) -> str:
    return "— (ok)" if error is None else f"`{error.__name__}`"


def _outcome(error: ErrorClass | None) -> str:
    return "—" if error is None else error.outcome


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def render() -> str:
    """Every table of :mod:`worker.connectus.classify`, as Markdown."""
    cls, outcome, why, state = "class", "outcome", "why", "delivery state"
    http = [(str(code), rule) for code, rule in sorted(HTTP.items())]
    http += [("3xx", HTTP_REDIRECT), ("other 4xx", HTTP_OTHER_4XX), ("other 5xx", HTTP_OTHER_5XX)]
    smpp = [*SMPP.items(), ("other ESME_*", SMPP_UNKNOWN)]
    out = _table(
        "Transport failures (httpx)",
        ("httpx exception", cls, outcome, why),
        ((f"`{k.__name__}`", _cell(e), e.outcome, w) for k, e, w in TRANSPORT),
    )
    out += _table(
        "HTTP statuses",
        ("HTTP status", cls, outcome, why),
        ((k, _cell(r.error), _outcome(r.error), r.why) for k, r in http),
    )
    out += _table(
        "SMPP command statuses (v3 SMS)",
        ("status", "code", cls, outcome, state, why),
        (
            (
                f"`{k}`",
                "—" if r.code is None else f"0x{r.code:08X}",
                _cell(r.error),
                _outcome(r.error),
                r.state or "—",
                r.why,
            )
            for k, r in smpp
        ),
    )
    out += _table(
        "Platform statuses",
        ("status", "class (in a send answer)", outcome, state, why),
        (
            (f"`{k}`", _cell(r.error), _outcome(r.error), r.state or "—", r.why)
            for k, r in PLATFORM.items()
        ),
    )
    out += ["### Body texts meaning balance exhausted", ""]
    out += ["Any answer whose `error` or `detail` contains one of these (case-insensitive)"]
    out += ["is `BalanceExhausted` (pause):", ""]
    out += [*(f"- `{text}`" for text in BALANCE_TEXTS), ""]
    out += _table(
        "WhatsApp QR session statuses",
        ("status", "class (in any answer)", outcome, why),
        ((f"`{k}`", _cell(r.error), _outcome(r.error), r.why)
         for k, r in QR_SESSION_STATUSES.items()),
    )  # fmt: skip
    out += ["### Body texts meaning the QR session is not connected", ""]
    out += ["Any answer whose `error` or `detail` contains one of these (case-insensitive)"]
    out += ["is `SessionDisconnected` (pause of the `qr_session` scope):", ""]
    out += [*(f"- `{text}`" for text in SESSION_TEXTS), ""]
    return "\n".join(out)
