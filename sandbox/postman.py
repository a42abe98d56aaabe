"""Walk the Connectus Postman collection against a sandbox and tabulate the answers.

Usage (by hand)::

    python -m sandbox.postman                       # starts its own sandbox
    python -m sandbox.postman --base-url http://127.0.0.1:8081

Every request of the collection is sent with its method, path and body. Both
hosts (``plataforma.connectus.la`` for v3, ``whatsappqr.connectus.la`` for the
QR API) go to the sandbox root. Auth is Basic ``{{api_user}}:{{api_key}}``, or
Bearer ``{{bearer_token_whatsappqr}}`` = the API key where the collection asks
for a bearer token. Placeholder ids are replaced by ids of objects created in
the same run: a setup phase creates a subclient, three future deliveries, an
e-mail and a short link, and ids returned by earlier requests (SMS, WhatsApp)
are captured as the walk goes (:data:`ID_PLACEHOLDERS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

COLLECTION = (
    Path(__file__).resolve().parents[2] / "shared/connectus/003_8ec51efb326a2334.pretty.json"
)

# Literal ids in the collection → which object of this run stands in for them.
ID_PLACEHOLDERS: dict[str, str] = {
    "a1476f56": "client",  # id_client in the e-mail / WhatsApp bodies
    "e4a1dbb9e10a4f0abf058c42984980d4": "sms_delivery",  # GET /deliveries/:id
    "33d0b01af7484f94ae23c24c63282053": "sms_delivery",  # PATCH /deliveries/:id
    "0a3b773f79cf4f72842ed9818c89c523": "whatsapp_message",  # whatsapp/status
    "312321": "short_link",  # GET /short_link/:id
}
# id_delivery 484ed6ca... appears in both the e-mail and the WhatsApp body.
DELIVERY_BY_PATH = {"/api_v3/email/": "email_delivery", "/api_v3/whatsapp/": "whatsapp_delivery"}
# Path variables ``:id`` by path prefix.
PATH_ID_BY_PREFIX = {
    "/api_v3/sms/": "sms",
    "/api_v3/clients/": "client",
    "/api_v3/email/": "email",
}
# Requests whose id cannot exist in a fresh sandbox (name → reason); they may 404.
EXPECTED_MISSING: dict[str, str] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class PostmanRequest:
    folder: str
    name: str
    method: str
    url: str
    body: str | None
    auth: str  # "basic" or "bearer"


@dataclasses.dataclass(slots=True)
class Result:
    request: PostmanRequest
    path: str
    status: int
    detail: str


def iter_requests(items: list[dict[str, Any]], folder: str = "") -> Iterator[PostmanRequest]:
    for item in items:
        if "item" in item:
            yield from iter_requests(item["item"], f"{folder}/{item['name']}".strip("/"))
            continue
        req = item["request"]
        url = req["url"] if isinstance(req["url"], str) else req["url"]["raw"]
        body = (req.get("body") or {}).get("raw") or None
        auth = (req.get("auth") or {}).get("type") or "basic"
        yield PostmanRequest(folder, item["name"], req["method"], url, body, auth)


def load(path: Path = COLLECTION) -> list[PostmanRequest]:
    return list(iter_requests(json.loads(path.read_text(encoding="utf-8"))["item"]))


class Walker:
    """Holds the ids of this run and rewrites requests to use them."""

    def __init__(self, client: httpx.Client, api_key: str) -> None:
        self.http = client
        self.api_key = api_key
        self.ids: dict[str, str] = {}

    def setup(self) -> None:
        """Create the objects the collection refers to before it creates them."""
        c = self.http
        self.ids["client"] = c.post("/api_v3/clients", json={"name": "postman"}).json()["id_unique"]
        for product, amount, country in ((1, 100, 1), (2, 10, None), (3, 10, None)):
            grant = {"amount": amount, "product": product, "id_country": country}
            c.post(f"/api_v3/clients/{self.ids['client']}/add_balance", json=grant)
        tomorrow = dt.datetime.now(zoneinfo.ZoneInfo("America/Santiago")) + dt.timedelta(days=1)
        at = tomorrow.strftime("%Y-%m-%d %H:%M:%S")
        for key, product in (("sms_delivery", 1), ("email_delivery", 2), ("whatsapp_delivery", 3)):
            body = {"delivery": {"name": f"postman {key}", "deliver_at": at, "id_product": product}}
            self.ids[key] = c.post("/api_v3/deliveries", json=body).json()["id"]
        email = {"dst_email": "a@example.cl", "src_email": "b@example.cl", "subject": "s",
                 "email_content": "<p>x</p>"}  # fmt: skip
        self.ids["email"] = c.post("/api_v3/email/send_single", json=email).json()["id"]
        link = c.post("/api_v3/short_link", json={"link": "https://www.connectus.cl"}).json()
        self.ids["short_link"] = str(link["id"])
        self.ids.setdefault("sms", "")
        self.ids.setdefault("whatsapp_message", "")

    def rewrite(self, req: PostmanRequest) -> tuple[str, str | None]:
        """The request's path+query and body with this run's ids."""
        parts = urlsplit(req.url)
        path, query = parts.path, parts.query
        for prefix, key in PATH_ID_BY_PREFIX.items():
            if path.startswith(prefix) and "/:id" in path:
                path = path.replace(":id", self.ids[key])
        today = dt.datetime.now(zoneinfo.ZoneInfo("America/Santiago")).strftime("%Y-%m-%d")
        query = query.replace("<date>", today).replace("<string>", self.ids["sms_delivery"])
        body = req.body
        for literal, key in ID_PLACEHOLDERS.items():
            path = path.replace(literal, self.ids[key])
            query = query.replace(literal, self.ids[key])
            if body:
                body = body.replace(literal, self.ids[key])
        if body:
            for prefix, key in DELIVERY_BY_PATH.items():
                if path.startswith(prefix):
                    body = re.sub(
                        r'"id_delivery":\s*"[0-9a-f]+"', f'"id_delivery": "{self.ids[key]}"', body
                    )
        return (f"{path}?{query}" if query else path), body

    def capture(self, path: str, answer: Any) -> None:
        if not isinstance(answer, dict):
            return
        if path.startswith("/api_v3/sms/send_") and answer.get("id"):
            self.ids["sms"] = answer["id"]
        if path == "/api_v3/whatsapp/send_message" and answer.get("message_id"):
            self.ids["whatsapp_message"] = answer["message_id"]

    def send(self, req: PostmanRequest) -> Result:
        target, body = self.rewrite(req)
        headers = {"Content-Type": "application/json"} if body else {}
        if req.auth == "bearer":
            headers["Authorization"] = f"Bearer {self.api_key}"
            response = self.http.request(req.method, target, content=body, headers=headers,
                                         auth=None)  # fmt: skip
        else:
            response = self.http.request(req.method, target, content=body, headers=headers)
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        self.capture(target.split("?")[0], answer)
        return Result(req, target, response.status_code, json.dumps(answer)[:70])


def run_collection(base_url: str, user: str, key: str, path: Path = COLLECTION) -> list[Result]:
    with httpx.Client(base_url=base_url, auth=(user, key), timeout=10.0) as client:
        walker = Walker(client, key)
        walker.setup()
        return [walker.send(req) for req in load(path)]


def table(results: list[Result]) -> str:
    lines = [f"{'status':>6}  {'method':<6} {'path':<58} name"]
    for r in results:
        lines.append(f"{r.status:>6}  {r.request.method:<6} {r.path[:58]:<58} {r.request.name}")
    return "\n".join(lines)


def main() -> None:
    import os

    p = argparse.ArgumentParser(prog="python -m sandbox.postman", description=__doc__)
    p.add_argument("--base-url", help="a running sandbox; default: start one")
    p.add_argument("--collection", type=Path, default=COLLECTION)
    args = p.parse_args()
    user = os.environ.get("CONNECTUS_API_USER") or "sandbox"
    key = os.environ.get("CONNECTUS_API_KEY") or "sandbox-key"
    if args.base_url:
        print(table(run_collection(args.base_url, user, key, args.collection)))
        return
    from sandbox.config import SandboxConfig
    from sandbox.server import SandboxServer

    with SandboxServer(SandboxConfig(api_user=user, api_key=key)) as server:
        print(table(run_collection(server.base_url, user, key, args.collection)))


if __name__ == "__main__":
    main()
