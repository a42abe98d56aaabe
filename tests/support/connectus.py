"""Test helpers: a recording ``httpx.MockTransport`` and a client built on it.

For tests of this package and of code that uses the client (no network)::

    client, recorder = make_client(httpx.Response(200, json={"status": "ESME_ROK", "id": "ab"}))
    client.v3.send_sms(dst_number="56911111111", sms_content="hola")
    assert recorder.last.url.path == "/api_v3/sms/send_individual"
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from connectus_worker.worker.connectus.client import ConnectusClient

Answer = httpx.Response | Exception | Callable[[httpx.Request], "httpx.Response | Exception"]

TEST_USER = "84f71863b7f64738aabc97afed7cd54d"
TEST_KEY = "16c329a233a047ef879eca2d66c70768"  # the v1 document's example key


class Recorder:
    """Records each request and answers with the given answers in turn.

    An answer is a response, an exception to raise, or a function of the
    request returning either (exceptions need the request, e.g.
    ``lambda r: httpx.ReadTimeout("timed out", request=r)``). The last
    answer repeats.
    """

    def __init__(self, *answers: Answer) -> None:
        if not answers:
            raise ValueError("Recorder needs at least one answer")
        self.requests: list[httpx.Request] = []
        self._answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if callable(answer) and not isinstance(answer, httpx.Response | Exception):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)

    def last_form(self) -> dict[str, str]:
        return dict(httpx.QueryParams(self.last.content.decode()))

    def last_query(self) -> dict[str, str]:
        return dict(self.last.url.params)


def make_client(*answers: Answer, **overrides: Any) -> tuple[ConnectusClient, Recorder]:
    """A client answering ``answers`` through a :class:`Recorder`, with test settings."""
    recorder = Recorder(*answers)
    settings: dict[str, Any] = {
        "api_user": TEST_USER,
        "api_key": TEST_KEY,
        "base_url": "https://plataforma.test",
        "v1_base_url": "https://api.test",
        "qr_base_url": "https://whatsappqr.test",
        "connect_timeout_s": 3.0,
        "read_timeout_s": 10.0,
        "transport": httpx.MockTransport(recorder),
    }
    settings.update(overrides)
    return ConnectusClient(**settings), recorder
