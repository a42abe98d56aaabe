"""One direct Connectus call from a command (``account``, ``v1``, ``deliveries``,
``clients``, ``qr``): configuration errors exit 78, a request refused before sending 2,
a refusal or failure from Connectus 1, each naming the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from connectus_worker.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_INVALID, fail, output

if TYPE_CHECKING:
    from connectus_worker.worker.connectus.client import ConnectusClient

T = TypeVar("T")


def call_connectus(ctx: typer.Context, as_json: bool, fn: Callable[[ConnectusClient], T]) -> T:
    """Run ``fn(client)``; configuration, input and Connectus errors exit clearly."""
    from connectus_worker.config import ConfigError
    from connectus_worker.worker.app import build_client
    from connectus_worker.worker.connectus import errors

    settings = ctx.obj()
    try:
        client = build_client(settings)
    except ConfigError as exc:
        fail(str(exc), as_json, code=EXIT_CONFIG)
    with client:
        try:
            return fn(client)
        except errors.InvalidRequest as exc:
            code = EXIT_INVALID if exc.status_code is None else EXIT_FAILED
            fail(f"Connectus refused it: {exc.message}", as_json, code=code, reason=exc.reason)
        except errors.SessionDisconnected as exc:  # only the QR API's calls raise it
            fail("the WhatsApp session is not connected: pair it with 'connectus qr code' "
                 f"({exc.reason})", as_json, reason=exc.reason)  # fmt: skip
        except errors.NotFound as exc:
            fail(f"not found at Connectus: {exc.message}", as_json, reason=exc.reason)
        except errors.ConnectusError as exc:
            fail(f"Connectus call failed: {exc.message}", as_json, reason=exc.reason)
        except ValueError as exc:  # InvalidInput, or a malformed argument the client refused
            fail(str(exc), as_json, code=EXIT_INVALID)


def reply(
    ctx: typer.Context, as_json: bool, title: str, fn: Callable[[ConnectusClient], Any],
    view: Callable[[Any], Any] | None = None,
) -> None:  # fmt: skip
    """Print ``view`` of the answer of ``fn(client)`` (default: the answer, :func:`dump`ed)."""
    answer = call_connectus(ctx, as_json, fn)
    output((view or dump)(answer), as_json, title=title)


def dump(value: Any) -> Any:
    """A result dataclass as plain JSON values (its ``raw`` answer left out)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name != "raw"}  # fmt: skip
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    return value
