"""The classification table, checked row by row against hand-written expectations.

The expectations below are written out independently of
``worker/connectus/classify.py`` (class *names*, from the issue and the
Postman collection), so a changed row fails here until someone decides again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectus_worker.worker.connectus import classify, errors
from connectus_worker.worker.connectus.classify import parse_retry_after
from devtools import errors_table

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / ".." / "shared" / "connectus" / "003_8ec51efb326a2334.pretty.json"

# --- the issue's four buckets -----------------------------------------------
RETRY, AMBIGUOUS, PERMANENT, PAUSE = "retry", "ambiguous", "permanent", "pause"

ISSUE_SMPP = {
    "ESME_RTHROTTLED": RETRY,
    "ESME_RMSGQFUL": RETRY,
    "ESME_RSYSERR": RETRY,
    "ESME_RX_T_APPN": RETRY,
    "ESME_RINVDSTADR": PERMANENT,
    "ESME_RX_P_APPN": PERMANENT,
    "ESME_RX_R_APPN": PERMANENT,
    "NUMERO_INVALIDO": PERMANENT,
}
ISSUE_HTTP = {429: RETRY, 502: RETRY, 503: RETRY, 500: AMBIGUOUS, 504: AMBIGUOUS}
ISSUE_HTTP |= {400: PERMANENT, 404: PERMANENT, 401: PAUSE, 403: PAUSE, 402: PAUSE}


def _exc(kind: type[httpx.RequestError]) -> httpx.RequestError:
    return kind("boom", request=httpx.Request("POST", "https://x.test/api_v3/sms/send_otp"))


ISSUE_TRANSPORT = {
    httpx.ConnectError: RETRY,
    httpx.ConnectTimeout: RETRY,
    httpx.PoolTimeout: RETRY,
    httpx.ReadTimeout: AMBIGUOUS,  # read timeout after the request went out
    httpx.RemoteProtocolError: AMBIGUOUS,  # connection closed mid-response
    httpx.ReadError: AMBIGUOUS,
}


@pytest.mark.parametrize(("status", "outcome"), sorted(ISSUE_SMPP.items()))
def test_issue_statuses_in_a_send_answer(status: str, outcome: str) -> None:
    verdict = classify.for_send_body({"status": status})
    assert verdict is not None
    assert verdict.error.outcome == outcome
    assert verdict.reason == status


@pytest.mark.parametrize(("code", "outcome"), sorted(ISSUE_HTTP.items()))
def test_issue_http_statuses(code: int, outcome: str) -> None:
    verdict = classify.for_http(code, {"error": "x"})
    assert verdict is not None
    assert verdict.error.outcome == outcome
    assert verdict.reason == f"http_{code}"


@pytest.mark.parametrize(("kind", "outcome"), ISSUE_TRANSPORT.items(), ids=lambda v: str(v))
def test_issue_transport_failures(kind: type[httpx.RequestError], outcome: str) -> None:
    assert classify.for_exception(_exc(kind)).error.outcome == outcome


def test_issue_429_honours_retry_after_seconds() -> None:
    verdict = classify.for_http(429, {"error": "Too many requests"}, "7")
    assert verdict is not None
    assert verdict.error is errors.RateLimited
    assert verdict.retry_after_s == 7.0


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Insufficient balance", "product": "sms", "id_country": 1},
        {"error": "Saldo insuficiente para el envío"},
        {"detail": "No tiene saldo"},
    ],
)
def test_issue_balance_exhausted_texts_pause(body: dict[str, Any]) -> None:
    for verdict in (classify.for_http(400, body), classify.for_send_body(body)):
        assert verdict is not None
        assert verdict.error is errors.BalanceExhausted
        assert verdict.error.outcome == PAUSE


# --- every row, against an independent expectation ---------------------------
EXPECTED_TRANSPORT = {
    "ConnectTimeout": "ConnectFailed",
    "ConnectError": "ConnectFailed",
    "PoolTimeout": "ConnectFailed",
    "ProxyError": "ConnectFailed",
    "UnsupportedProtocol": "ConnectFailed",
    "LocalProtocolError": "InvalidRequest",
    "WriteTimeout": "ResponseTimeout",
    "WriteError": "ConnectionDropped",
    "ReadTimeout": "ResponseTimeout",
    "ReadError": "ConnectionDropped",
    "RemoteProtocolError": "ConnectionDropped",
    "DecodingError": "MalformedResponse",
    "RequestError": "ConnectionDropped",
}
EXPECTED_HTTP = {
    400: "InvalidRequest", 401: "AuthenticationFailed", 402: "BalanceExhausted",
    403: "AuthenticationFailed", 404: "NotFound", 408: "ServiceUnavailable",
    422: "InvalidRequest", 429: "RateLimited", 500: "AmbiguousServerError",
    502: "ServiceUnavailable", 503: "ServiceUnavailable", 504: "AmbiguousServerError",
}  # fmt: skip
EXPECTED_HTTP_RANGES = {301: "InvalidRequest", 409: "InvalidRequest", 418: "InvalidRequest"}
EXPECTED_HTTP_RANGES |= {501: "AmbiguousServerError", 599: "AmbiguousServerError"}

BUSY, INVALID, NUMBER, REJECTED = "ProviderBusy", "InvalidRequest", "InvalidNumber", "Rejected"
# Reviewed for issue 18 (docs/errors.md, "The debatable rows"): login errors pause the
# account, denials pause the product, often-temporary refusals get a few retries.
LOGIN, DENIED, REFUSED = "OperatorLoginFailed", "ProductDenied", "SubmitRefused"
EXPECTED_SMPP: dict[str, str | None] = {
    "ESME_ROK": None, "ESME_RINVMSGLEN": INVALID, "ESME_RINVCMDLEN": INVALID,
    "ESME_RINVCMDID": INVALID, "ESME_RINVBNDSTS": BUSY, "ESME_RALYBND": BUSY,
    "ESME_RINVPRTFLG": INVALID, "ESME_RINVREGDLVFLG": INVALID, "ESME_RSYSERR": BUSY,
    "ESME_RINVSRCADR": INVALID, "ESME_RINVDSTADR": NUMBER, "ESME_RINVMSGID": INVALID,
    "ESME_RBINDFAIL": LOGIN, "ESME_RINVPASWD": LOGIN, "ESME_RINVSYSID": LOGIN,
    "ESME_RCANCELFAIL": REJECTED, "ESME_RREPLACEFAIL": REJECTED, "ESME_RMSGQFUL": BUSY,
    "ESME_RINVSERTYP": INVALID, "ESME_RINVNUMDESTS": INVALID, "ESME_RINVDLNAME": INVALID,
    "ESME_RINVDESTFLAG": INVALID, "ESME_RINVSUBREP": INVALID, "ESME_RINVESMCLASS": INVALID,
    "ESME_RCNTSUBDL": REJECTED, "ESME_RSUBMITFAIL": REFUSED, "ESME_RINVSRCTON": INVALID,
    "ESME_RINVSRCNPI": INVALID, "ESME_RINVDSTTON": NUMBER, "ESME_RINVDSTNPI": NUMBER,
    "ESME_RINVSYSTYP": BUSY, "ESME_RINVREPFLAG": INVALID, "ESME_RINVNUMMSGS": INVALID,
    "ESME_RTHROTTLED": "Throttled", "ESME_RINVSCHED": INVALID, "ESME_RINVEXPIRY": INVALID,
    "ESME_RINVDFTMSGID": INVALID, "ESME_RX_T_APPN": BUSY, "ESME_RX_P_APPN": REJECTED,
    "ESME_RX_R_APPN": REJECTED, "ESME_RQUERYFAIL": REJECTED, "ESME_RINVTLVSTREAM": INVALID,
    "ESME_RTLVNOTALLWD": INVALID, "ESME_RINVTLVLEN": INVALID, "ESME_RMISSINGTLV": INVALID,
    "ESME_RINVTLVVAL": INVALID, "ESME_RDELIVERYFAILURE": REFUSED, "ESME_RUNKNOWNERR": REFUSED,
    "ESME_RSERTYPUNAUTH": DENIED, "ESME_RPROHIBITED": DENIED, "ESME_RSERTYPUNAVAIL": BUSY,
    "ESME_RSERTYPDENIED": REJECTED, "ESME_RINVDCS": INVALID, "ESME_RINVSRCADDRSUBUNIT": INVALID,
    "ESME_RINVDSTADDRSUBUNIT": NUMBER, "ESME_RINVBCASTFREQINT": INVALID,
    "ESME_RINVBCASTALIAS_NAME": INVALID, "ESME_RINVBCASTAREAFMT": INVALID,
    "ESME_RINVNUMBCAST_AREAS": INVALID, "ESME_RINVBCASTCNTTYPE": INVALID,
    "ESME_RINVBCASTMSGCLASS": INVALID, "ESME_RBCASTFAIL": REJECTED,
    "ESME_RBCASTQUERYFAIL": REJECTED, "ESME_RBCASTCANCELFAIL": REJECTED,
    "ESME_RINVBCAST_REP": INVALID, "ESME_RINVBCASTSRVGRP": INVALID,
    "ESME_RINVBCASTCHANIND": INVALID, "DELIVRD": None, "UNDELIV": REJECTED,
}  # fmt: skip
EXPECTED_PLATFORM = {  # status: class in a send answer
    "PROGRAMADO": None,
    "EN_COLA": None,
    "ENVIADO_A_CARRIER": None,
    "ESPERANDO_RESPUESTA": None,
    "NUMERO_ENVIADO": None,
    "ENTREGADO": None,
    "NO_ENTREGABLE": "Rejected",
    "NUMERO_INVALIDO": "InvalidNumber",
}


def _name(error: type[errors.ConnectusError] | None) -> str | None:
    return None if error is None else error.__name__


def test_transport_rows_are_exactly_the_expected_ones() -> None:
    assert {k.__name__: _name(e) for k, e, _ in classify.TRANSPORT} == EXPECTED_TRANSPORT


@pytest.mark.parametrize(("name", "expected"), EXPECTED_TRANSPORT.items())
def test_transport_row(name: str, expected: str) -> None:
    verdict = classify.for_exception(_exc(getattr(httpx, name)))
    assert verdict.error.__name__ == expected


def test_http_rows_are_exactly_the_expected_ones() -> None:
    assert {code: _name(rule.error) for code, rule in classify.HTTP.items()} == EXPECTED_HTTP


@pytest.mark.parametrize(("code", "expected"), {**EXPECTED_HTTP, **EXPECTED_HTTP_RANGES}.items())
def test_http_row(code: int, expected: str) -> None:
    verdict = classify.for_http(code, None)
    assert verdict is not None
    assert verdict.error.__name__ == expected
    assert verdict.reason == f"http_{code}"


@pytest.mark.parametrize("code", [200, 201, 204])
def test_2xx_is_not_an_error(code: int) -> None:
    assert classify.for_http(code, {"status": "ESME_ROK"}) is None


def test_smpp_rows_are_exactly_the_expected_ones() -> None:
    assert {k: _name(r.error) for k, r in classify.SMPP.items()} == EXPECTED_SMPP


@pytest.mark.parametrize(("status", "expected"), EXPECTED_SMPP.items())
def test_smpp_row_in_a_send_answer(status: str, expected: str | None) -> None:
    verdict = classify.for_send_body({"status": status, "id": "abc"})
    assert _name(verdict.error if verdict else None) == expected


@pytest.mark.parametrize(("status", "expected"), EXPECTED_PLATFORM.items())
def test_platform_row(status: str, expected: str | None) -> None:
    verdict = classify.for_send_body({"status": status, "message_id": "m1"})
    assert _name(verdict.error if verdict else None) == expected


def test_platform_rows_are_exactly_the_expected_ones() -> None:
    assert set(classify.PLATFORM) == set(EXPECTED_PLATFORM)


def _collection_smpp() -> dict[str, int]:
    assert COLLECTION.is_file(), f"the Postman collection is missing at {COLLECTION}"
    text = json.dumps(json.loads(COLLECTION.read_text(encoding="utf-8")))
    rows = re.findall(r"<td>(ESME_\w+)</td>\\n<td>(0x[0-9A-Fa-f]+)</td>", text)
    return {name: int(code, 16) for name, code in rows}


def test_every_smpp_status_of_the_collection_has_a_row_with_its_code() -> None:
    documented = _collection_smpp()
    assert len(documented) == 67  # the table as published; a new one must be decided
    assert {name: classify.SMPP[name].code for name in documented} == documented
    assert set(classify.SMPP) - set(documented) == {"DELIVRD", "UNDELIV"}


# --- bodies refine client errors; some statuses never ---------------------------
@pytest.mark.parametrize(
    ("code", "body", "expected", "reason"),
    [
        (400, {"status": "ESME_RINVDSTADR"}, errors.InvalidNumber, "ESME_RINVDSTADR"),
        (400, {"error": "bad", "field": "dst_number"}, errors.InvalidNumber, "invalid_dst_number"),
        (400, {"error": "bad", "field": "sms_content"}, errors.InvalidRequest, "http_400"),
        (422, {"error": "saldo agotado"}, errors.BalanceExhausted, "balance_exhausted"),
        (400, {"status": "NUMERO_INVALIDO"}, errors.InvalidNumber, "NUMERO_INVALIDO"),
        (401, {"error": "Insufficient balance"}, errors.AuthenticationFailed, "http_401"),
        (503, {"status": "ESME_RINVDSTADR"}, errors.ServiceUnavailable, "http_503"),
        (404, {"error": "Not found"}, errors.NotFound, "http_404"),
        (400, "not json", errors.InvalidRequest, "http_400"),
    ],
)
def test_http_body_refinement(
    code: int, body: Any, expected: type[errors.ConnectusError], reason: str
) -> None:
    verdict = classify.for_http(code, body)
    assert verdict is not None
    assert (verdict.error, verdict.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "ESME_ROK", "id": "a" * 32}, None),
        ({"message_id": "m", "status": "EN_COLA"}, None),
        ({"id": "e1"}, None),
        ({"success": True, "message_id": "q1"}, None),
        # The QR session is not paired: a pause of QR sends, not this message's failure.
        ({"success": False, "error": "not connected"}, errors.SessionDisconnected),
        ({"success": False, "error": "invalid number"}, errors.Rejected),
        ({"status": "ESME_RBRANDNEW"}, errors.Rejected),
        (["not", "an", "object"], errors.MalformedResponse),
        # Content echoed back is not an error text: never pause on it.
        ({"status": "ESME_ROK", "id": "x", "sms_content": "sin saldo"}, None),
    ],
)
def test_send_body(body: Any, expected: type[errors.ConnectusError] | None) -> None:
    verdict = classify.for_send_body(body)
    assert (verdict.error if verdict else None) is expected


@pytest.mark.parametrize(
    ("text", "expected", "reason"),
    [("NUMERO_INVALIDO", errors.InvalidNumber, "NUMERO_INVALIDO"),
     ("error: ESME_RINVDSTADR, bad", errors.InvalidNumber, "ESME_RINVDSTADR"),
     ("no tiene saldo", errors.BalanceExhausted, "balance"),
     ("algo raro", errors.Rejected, "bulk_item_error")],
)  # fmt: skip
def test_bulk_item_texts(text: str, expected: type[errors.ConnectusError], reason: str) -> None:
    verdict = classify.for_bulk_item(text)
    assert (verdict.error, verdict.reason) == (expected, reason)


# --- Retry-After -----------------------------------------------------------------
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Fri, 02 Jan 2026 03:04:35 GMT", 30.0),
        ("Fri, 02 Jan 2026 03:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_503_carries_retry_after_and_other_statuses_do_not() -> None:
    unavailable = classify.for_http(503, None, "12")
    server_error = classify.for_http(500, None, "12")
    assert unavailable is not None and unavailable.retry_after_s == 12.0
    assert server_error is not None and server_error.retry_after_s is None


# --- the rendered table and docs/errors.md ---------------------------------------
def test_rendered_table_names_every_row() -> None:
    text = errors_table.render()
    for name in [*EXPECTED_SMPP, *EXPECTED_PLATFORM, *EXPECTED_TRANSPORT]:
        assert f"| `{name}` |" in text
    assert "| 429 | `RateLimited` | retry |" in text
    assert "| `ESME_RTHROTTLED` | 0x00000058 | `Throttled` | retry |" in text


def test_docs_errors_md_embeds_the_rendered_table() -> None:
    docs = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    assert errors_table.render() in docs


def test_module_main_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devtools.errors_table"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.stdout == errors_table.render()
