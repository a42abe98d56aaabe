"""``python -m devtools.errors_table``: the tables of :mod:`worker.connectus.classify`
as Markdown, which ``docs/errors.md`` embeds verbatim (a unit test compares them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from connectus_worker.worker.connectus import classify as c


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return [*lines, ""]


def _rule(rule: c.Rule) -> tuple[str, str]:
    """The class and outcome cells of a row."""
    if rule.error is None:
        return "— (ok)", "—"
    return f"`{rule.error.__name__}`", rule.error.outcome


def _statuses(rules: Mapping[str, c.Rule], codes: bool = False) -> Iterable[list[object]]:
    for name, rule in rules.items():
        code = [] if not codes else ["—" if rule.code is None else f"0x{rule.code:08X}"]
        yield [f"`{name}`", *code, *_rule(rule), rule.why]


def _texts(texts: Sequence[str], what: str) -> list[str]:
    lines = ["Any answer whose `error` or `detail` contains one of these (case-insensitive)"]
    return [*lines, f"is {what}:", "", *(f"- `{text}`" for text in texts), ""]


def render() -> str:
    """Every table of :mod:`worker.connectus.classify`, as Markdown."""
    head = ("class", "outcome", "why")
    http = {**{str(k): r for k, r in sorted(c.HTTP.items())}, "3xx": c.HTTP_REDIRECT,
            "other 4xx": c.HTTP_OTHER_4XX, "other 5xx": c.HTTP_OTHER_5XX}  # fmt: skip
    out = _table(
        "Transport failures (httpx)",
        ("httpx exception", *head),
        ((f"`{k.__name__}`", f"`{e.__name__}`", e.outcome, why) for k, e, why in c.TRANSPORT),
    )
    out += _table("HTTP statuses", ("HTTP status", *head),
                  ((k, *_rule(r), r.why) for k, r in http.items()))  # fmt: skip
    out += _table(
        "SMPP command statuses (v3 SMS)",
        ("status", "code", "class", "outcome", "why"),
        _statuses({**c.SMPP, "other ESME_*": c.SMPP_UNKNOWN}, codes=True),
    )
    out += _table(
        "Platform statuses",
        ("status", "class (in a send answer)", "outcome", "why"),
        _statuses(c.PLATFORM),
    )
    out += ["### Body texts meaning balance exhausted", ""]
    out += _texts(c.BALANCE_TEXTS, "`BalanceExhausted` (pause)")
    out += _table(
        "WhatsApp QR session statuses",
        ("status", "class (in any answer)", "outcome", "why"),
        ([f"`{n}`", *_rule(r), r.why] for n, r in c.QR_SESSION_STATUSES.items()),
    )
    out += ["### Body texts meaning the QR session is not connected", ""]
    out += _texts(c.SESSION_TEXTS, "`SessionDisconnected` (pause of the `qr_session` scope)")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
