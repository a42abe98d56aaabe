"""One short link for a campaign URL, and its clicks (``/api_v3/short_link``).

The collection's ``POST /short_link`` example answers ``{"short_link":
"cnct.us/13neyY"}`` alone; its ``GET /short_link/:id`` takes an id the
answer does not show. When the answer has no ``id``, the code (the last
path segment of the short link) stands for it: the documents are silent,
and the sandbox accepts both.
"""

from __future__ import annotations

from connectus_worker.worker.connectus.client import ConnectusClient


def short_link_of(client: ConnectusClient, url: str) -> tuple[str, str]:
    """``(short_link, id)`` of a new short link to ``url``."""
    answer = client.v3.create_short_link(link=url)
    if not answer.short_link:
        raise ValueError("POST /short_link answered no short_link")
    return answer.short_link, answer.id or answer.short_link.rstrip("/").rsplit("/", 1)[-1]


def clicks_of(client: ConnectusClient, id_short_link: str) -> int | None:
    """Clicks so far (``GET /short_link/:id``); None if the answer has none."""
    return client.v3.get_short_link(id_short_link=id_short_link).clicks
