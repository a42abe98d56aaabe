"""Several Connectus accounts in one sandbox, each with its own balances, ledger,
messages, faults and provider limit (``--account USER:KEY``, repeatable).

Each account is a whole sandbox app (:func:`sandbox.app.build_app` of its own
config); a request goes to the account its credentials name: the user of
``Authorization: Basic``, the key of ``Bearer`` (the QR API). Unknown or
missing credentials go to the first account, which answers 401 as a single
sandbox does. The admin API (``/_sandbox/...``) acts on the account named by
the header ``X-Sandbox-Account: <api_user>`` (default: the first): its ledger,
faults, balances, webhook URLs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from sandbox.config import SandboxConfig
from sandbox.state import Clock
from sandbox.web import Runtime

ACCOUNT_HEADER = b"x-sandbox-account"


def build_accounts_app(config: SandboxConfig, *, clock: Clock) -> Starlette:
    """One app per account behind a dispatcher; ``app.state.runtime`` is the first
    account's, ``app.state.runtimes`` every account's by API user."""
    from sandbox.app import build_app, running

    pairs = [(config.api_user, config.api_key), *config.accounts]
    apps = {
        user: build_app(dataclasses.replace(config, api_user=user, api_key=key, accounts=()),
                        clock=clock)
        for user, key in pairs
    }  # fmt: skip
    by_key = {key: user for user, key in pairs}
    first = apps[config.api_user]

    def pick(scope: Scope) -> Starlette:
        headers = dict(scope.get("headers") or [])
        named = headers.get(ACCOUNT_HEADER)
        if named is not None and scope["path"].startswith("/_sandbox"):
            return apps.get(named.decode("latin-1"), first)
        scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer":
            return apps.get(by_key.get(value.strip(), ""), first)
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return first
            return apps.get(user, first)
        return first

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        await pick(scope)(scope, receive, send)

    runtimes: dict[str, Runtime] = {user: app.state.runtime for user, app in apps.items()}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for rt in runtimes.values():
                await stack.enter_async_context(running(rt))
            yield

    outer = Starlette(routes=[Mount("", app=dispatch)], lifespan=lifespan)
    outer.state.runtime = first.state.runtime
    outer.state.runtimes = runtimes
    return outer
