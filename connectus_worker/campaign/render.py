"""A stored recipient row, turned into what is sent: the Connectus payload of one job.

Used by the pump when it releases a chunk for per-message v3 sends, and by
the bulk sender for v1 ``send_sms_bulk``. Rows were validated when the
campaign was accepted, so rendering is a pure function of the campaign and
the row. The payload's field names come from the kind's row of
:data:`domain.models.KINDS`.
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
    spec = campaign.kind.spec
    text = template.render_row(row)
    payload: dict[str, Any] = {spec.dst_field: row[0], spec.content_field: text}
    if campaign.src is not None and campaign.kind is not Kind.SMS:
        # Connectus names the origin as it names the destination: src_number, src_email.
        # (An SMS campaign's src is not checked by the planner, and never was sent.)
        payload[spec.dst_field.replace("dst_", "src_", 1)] = campaign.src
    if template.render_subject is not None:
        payload["subject"] = template.render_subject(row[1:])
    if campaign.id_client:
        payload["id_client"] = campaign.id_client
    # An SMS is charged per 160-character segment; an e-mail or a WhatsApp message once.
    return payload, sms_segments(text) if spec.segmented else 1


def masked(campaign: Campaign, dst: str) -> str:
    """The destination as job records keep it."""
    return mask_email(dst) if campaign.kind.spec.email else mask_phone(dst)
