"""worker.senders.ClientSender: a send of each kind, with the in-process retries of tenacity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from connectus_worker.config import load_settings
from connectus_worker.domain.models import Kind
from connectus_worker.worker.connectus import errors as e
from connectus_worker.worker.senders import ClientSender
from tests.support.connectus import make_client

PAYLOAD = {"dst_number": "56987654321", "sms_content": "x"}
EMAIL = {"dst_email": "a@b.cl", "src_email": "c@d.cl", "subject": "s", "email_content": "x"}


def _sender(
    attempts: int, answers: list[Exception | str]
) -> tuple[ClientSender, list[float], list[int]]:
    settings = load_settings({"RETRY_ATTEMPTS": str(attempts)})
    sleeps: list[float] = []
    calls: list[int] = []
    sender = ClientSender(None, settings, sleep=sleeps.append)  # type: ignore[arg-type]

    def call(payload: Mapping[str, Any]) -> str:
        calls.append(len(calls) + 1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    sender.calls[Kind.SMS] = call
    return sender, sleeps, calls


def test_a_first_success_is_one_call_and_no_wait() -> None:
    sender, sleeps, calls = _sender(3, ["p-1"])
    assert sender(Kind.SMS, PAYLOAD) == "p-1"
    assert (calls, sleeps) == ([1], [])


def test_transient_failures_are_retried_up_to_the_attempts_counting_the_first() -> None:
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    sender, sleeps, calls = _sender(3, [busy, busy, "p-3"])
    assert sender(Kind.SMS, PAYLOAD) == "p-3"
    assert calls == [1, 2, 3]
    assert len(sleeps) == 2  # a wait before each retry, none before the first call

    last = e.ServiceUnavailable("503 again", reason="http_503", status_code=503)
    sender, sleeps, calls = _sender(3, [busy, busy, last])
    with pytest.raises(e.ServiceUnavailable) as caught:
        sender(Kind.SMS, PAYLOAD)
    assert caught.value is last  # the last error itself, never tenacity's RetryError
    assert (calls, len(sleeps)) == ([1, 2, 3], 2)


def test_one_attempt_means_the_first_transient_error_is_raised_as_it_is() -> None:
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    sender, sleeps, calls = _sender(1, [busy])
    with pytest.raises(e.ServiceUnavailable) as caught:
        sender(Kind.SMS, PAYLOAD)
    assert caught.value is busy
    assert (calls, sleeps) == ([1], [])


@pytest.mark.parametrize("first_transient", [False, True])
def test_a_permanent_or_ambiguous_error_is_never_retried(first_transient: bool) -> None:
    busy = e.ServiceUnavailable("503", reason="http_503", status_code=503)
    invalid = e.InvalidNumber("bad number", reason="invalid_dst_number")
    ambiguous = e.ResponseTimeout("read timed out", reason="read_timeout")
    for final in (invalid, ambiguous):
        answers: list[Exception | str] = [busy, final] if first_transient else [final]
        sender, _, calls = _sender(3, answers)
        with pytest.raises(type(final)) as caught:
            sender(Kind.SMS, PAYLOAD)
        assert caught.value is final
        assert len(calls) == (2 if first_transient else 1)


#: Each kind's Connectus call (KINDS), as the documents name it, with a payload of that kind.
CALLS = [
    (Kind.SMS, "plataforma.test", "/api_v3/sms/send_individual", PAYLOAD),
    (Kind.OTP, "plataforma.test", "/api_v3/sms/send_otp", {**PAYLOAD, "save_content": "hash"}),
    (Kind.EMAIL, "plataforma.test", "/api_v3/email/send_single", EMAIL),
    (Kind.OTP_EMAIL, "plataforma.test", "/api_v3/email/send_otp_email", EMAIL),
    (Kind.WHATSAPP, "plataforma.test", "/api_v3/whatsapp/send_message",
     {"src_number": "56911111111", "dst_number": "56987654321", "whatsapp_content": "x"}),
    (Kind.WHATSAPP_QR, "whatsappqr.test", "/send", {"number": "56987654321", "message": "x"}),
    (Kind.WHATSAPP_QR_GROUP, "whatsappqr.test", "/send-message-to-group",
     {"group_name": "ventas", "message": "x"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "host", "path", "payload"), CALLS, ids=[c[0].value for c in CALLS]
)
def test_each_kind_is_sent_by_its_own_connectus_call(
    kind: Kind, host: str, path: str, payload: dict[str, Any]
) -> None:
    client, recorder = make_client(httpx.Response(200, json={}))
    ClientSender(client, load_settings({}))(kind, payload)
    assert (recorder.last.method, recorder.last.url.host, recorder.last.url.path) == (
        "POST",
        host,
        path,
    )
    assert len(recorder.requests) == 1
