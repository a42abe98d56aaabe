"""A stored recipient row, turned into what is sent: the Connectus payload of one job.

Used where a campaign's messages are made: by the pump when it releases a
chunk for per-message v3 sends, and by the bulk sender for v1
``send_sms_bulk``. Rows were validated when the campaign was accepted, so
rendering is a pure function of the campaign and the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from connectus_worker.campaign.model import Campaign
from connectus_worker.campaign.template import Template
from connectus_worker.domain.models import Kind
from connectus_worker.domain.validation import sms_segments
from connectus_worker.logging.redaction import mask_email, mask_phone


@lru_cache(maxsize=64)
def _template(text: str, subject: str | None) -> Template:
    return Template.parse(text, subject)


def template_of(campaign: Campaign) -> Template:
    return _template(campaign.text, campaign.subject)


def payload_for(campaign: Campaign, row: Sequence[str]) -> tuple[dict[str, Any], int]:
    """(Connectus payload, charged units) for one row ``[dst, value...]``."""
    template = template_of(campaign)
    values = row[1:]  # aligned with campaign.fields (= template.fields)
    text = template.render_aligned(values)
    dst = row[0]
    payload: dict[str, Any]
    if campaign.kind is Kind.SMS:
        payload = {"dst_number": dst, "sms_content": text}
        units = sms_segments(text)
    elif campaign.kind is Kind.EMAIL:
        payload = {"dst_email": dst, "src_email": campaign.src, "subject":
                   template.render_subject_aligned(values), "email_content": text}  # fmt: skip
        units = 1
    elif campaign.kind is Kind.WHATSAPP:
        payload = {"src_number": campaign.src, "dst_number": dst, "whatsapp_content": text}
        units = 1
    else:  # pragma: no cover - refused when the campaign was accepted
        raise ValueError(f"kind: {campaign.kind.value} is not a campaign kind")
    if campaign.id_client:
        payload["id_client"] = campaign.id_client
    return payload, units


def masked(campaign: Campaign, dst: str) -> str:
    """The destination as job records keep it."""
    return mask_email(dst) if campaign.kind is Kind.EMAIL else mask_phone(dst)
