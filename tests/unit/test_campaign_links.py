"""campaign.links: {link:URL} tokens, their preflight estimate and one shortening per URL."""

from __future__ import annotations

import pytest

from connectus_worker.campaign.links import (
    SHORT_LINK_CHARS,
    dump,
    estimated,
    links_in,
    load,
    shorten_all,
)
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config import load_settings
from connectus_worker.domain.validation import InvalidInput, sms_segments
from connectus_worker.producers.campaign_plan import resolve

URL = "https://tienda.example.cl/ofertas/verano?utm_source=sms&utm_campaign=" + "x" * 60


def test_tokens_are_found_once_each_and_bad_ones_are_named() -> None:
    text = f"Hola {{name}}: {{link:{URL}}} y otra vez {{link:{URL}}} o {{link:https://b.cl}}"
    assert links_in(text) == (URL, "https://b.cl")
    for bad in ("{link:ftp://x.cl}", "{link:https://a b}", "{link:https://a.cl"):
        with pytest.raises(InvalidInput) as caught:
            links_in(bad)
        assert caught.value.field == "text" and "http(s) URL" in str(caught.value)


def test_each_url_is_shortened_once_whatever_its_repeats() -> None:
    calls: list[str] = []

    def create(url: str) -> tuple[str, str]:
        calls.append(url)
        return f"cnct.us/c{len(calls)}", str(len(calls))

    text, refs = shorten_all(
        f"{{link:{URL}}} {{name}} {{link:{URL}}} {{link:https://b.cl}}", create
    )
    assert calls == [URL, "https://b.cl"]
    assert text == "cnct.us/c1 {name} cnct.us/c1 cnct.us/c2"
    assert load(dump(refs)) == refs


def test_preflight_counts_the_documented_short_link_length() -> None:
    settings = load_settings({})
    head = "a" * (160 - SHORT_LINK_CHARS)  # with the short link: exactly one segment
    resolved = resolve(CampaignOptions(name="Promo", text=f"{head}{{link:{URL}}}"), settings)
    rendered = resolved.template.render(())
    assert len(rendered) == 160 and sms_segments(rendered) == 1  # the long URL would be 2
    assert len(estimated(f"{{link:{URL}}}")) == SHORT_LINK_CHARS
    assert resolved.options.text == f"{head}{{link:{URL}}}"  # stored so: the worker shortens it
    with pytest.raises(InvalidInput) as caught:
        resolve(CampaignOptions(name="Promo", text="{link:nope}"), settings)
    assert caught.value.field == "text"
