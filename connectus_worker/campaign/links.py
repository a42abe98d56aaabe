"""Short links in campaign templates: ``{link:https://...}``.

A campaign text may name a long URL as ``{link:https://tienda.cl/oferta?x=1}``.
It is shortened **once per campaign** through ``POST /api_v3/short_link``,
never once per recipient: when the campaign is first met by the pump
(:mod:`worker.campaigns`), which rewrites the stored text with the short
links and keeps ``short_links`` (URL, short link, id) on the campaign record.
The campaign status reads each link's clicks (``GET /api_v3/short_link/:id``).

Preflight does not call the API (the HTTP service holds no Connectus
credentials, and a preflight must have no side effect at Connectus): it
counts each link as :data:`SHORT_LINK_CHARS` characters, the length of the
collection's example answer (``cnct.us/13neyY``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connectus_worker.domain.validation import InvalidInput

#: A link token: ``{link:`` + an http(s) URL without spaces or braces + ``}``.
LINK = re.compile(r"\{link:(https?://[^\s{}]+)\}")
_ANY_LINK = re.compile(r"\{link:")
#: Characters of a short link, for preflight: the documented ``cnct.us/13neyY``.
SHORT_LINK_CHARS = 14
_ESTIMATE = "cnct.us/" + "x" * (SHORT_LINK_CHARS - len("cnct.us/"))


@dataclass(frozen=True, slots=True)
class ShortLinkRef:
    """One shortened URL of a campaign: ``id`` is what ``GET /short_link/:id`` takes."""

    url: str
    short_link: str
    id: str


def links_in(text: str, field: str = "text") -> tuple[str, ...]:
    """The distinct URLs of the ``{link:...}`` tokens, in order; InvalidInput naming
    ``field`` for a ``{link:`` that is not a well-formed token."""
    found = LINK.findall(text)
    if len(_ANY_LINK.findall(text)) != len(found):
        raise InvalidInput(field, "a {link:...} needs an http(s) URL without spaces or braces, "
                           "then '}'")  # fmt: skip
    return tuple(dict.fromkeys(found))


def estimated(text: str) -> str:
    """``text`` with every link token as a short link of the documented length."""
    return LINK.sub(_ESTIMATE, text)


def shorten_all(
    text: str, create: Callable[[str], tuple[str, str]]
) -> tuple[str, tuple[ShortLinkRef, ...]]:
    """(new text, refs): ``create(url) -> (short_link, id)`` called once per distinct URL."""
    refs = tuple(ShortLinkRef(url, *create(url)) for url in links_in(text))
    short = {r.url: r.short_link for r in refs}
    return LINK.sub(lambda m: short[m.group(1)], text), refs


def dump(refs: Sequence[ShortLinkRef]) -> str:
    return json.dumps([{"url": r.url, "short_link": r.short_link, "id": r.id} for r in refs])


def load(data: str | None) -> tuple[ShortLinkRef, ...]:
    if not data:
        return ()
    return tuple(ShortLinkRef(d["url"], d["short_link"], str(d["id"])) for d in json.loads(data))
