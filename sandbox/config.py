"""Frozen configuration of the sandbox, built once by the entry point.

Nothing here reads the environment at import time: :func:`config_from_env` is
called by ``sandbox.server.run`` / ``python -m sandbox`` / the CLI, and the
resulting :class:`SandboxConfig` is passed into ``sandbox.app.build_app``.

Units are in the field names: ``_ms`` milliseconds, ``_s`` seconds; rates are
probabilities in ``[0, 1]``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.charging import COUNTRY_NAMES

DEFAULT_API_USER = "sandbox"
DEFAULT_API_KEY = "sandbox-key"

# Applies-to values for faults: only the send calls, or every documented call.
FAULTS_SEND_ONLY = "send"
FAULTS_ALL = "all"
# The three APIs, which are three hosts at Connectus (v3, v1, WhatsApp QR).
API_NAMES = ("v3", "v1", "qr")


def parse_apis(text: str) -> tuple[str, ...]:
    """``"v3,qr"`` → ``("v3", "qr")``; an unknown name raises ``ValueError`` naming it."""
    apis = tuple(part.strip() for part in text.split(",") if part.strip())
    for api in apis:
        if api not in API_NAMES:
            raise ValueError(f"apis: {api!r} is not one of {', '.join(API_NAMES)}")
    return apis


# How send calls answer: the project's chosen shapes (docs/connectus-api.md,
# with ids), or exactly what the collection's saved examples show.
ANSWERS_CHOSEN = "chosen"
ANSWERS_DOCUMENTED = "documented"

# Where v1 takes its parameters: the query string only, as every example of the
# v1 document sends them, or also a form or JSON body (relaxed).
V1_PARAMS_QUERY = "query"
V1_PARAMS_ANY = "any"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Injected faults; each rate is drawn per send call from one seeded RNG.

    - ``latency_ms`` / ``jitter_ms``: added delay (``asyncio.sleep``), uniform in
      ``[latency_ms - jitter_ms, latency_ms + jitter_ms]`` clamped at 0.
    - ``error_rate``: HTTP 5xx, an even mix of 500/502/503/504. 502/503 mean
      "nothing was sent"; 500/504 are ambiguous: with probability
      ``ambiguous_charge_rate`` the message *was* accepted and charged first.
    - ``rate_429``: HTTP 429 with ``Retry-After: retry_after_s``.
    - ``throttle_rate``: v3 SMS answer ``{"status": "ESME_RTHROTTLED"}`` (not charged).
    - ``drop_rate``: accepted and charged, then the connection is closed
      mid-response (the client sees a protocol error, never a status).
    - ``refusal_rate`` / ``refusal_status``: v3 SMS sends answer
      ``{"status": refusal_status}`` (an SMPP refusal such as ``ESME_RPROHIBITED``
      or ``ESME_RSUBMITFAIL``; not charged); other calls are not affected.
    - ``applies_to``: ``"send"`` (default: lookups stay reliable) or ``"all"``.
    - ``apis``: the APIs whose calls are faulted (``v3``, ``v1``, ``qr``; all by
      default), to fail one Connectus host while the others work.
    - ``seed``: seed of the fault RNG.
    - ``answers``: ``"chosen"`` (default: send answers carry the message's id,
      docs/connectus-api.md) or ``"documented"``: exactly what the collection
      shows, ``{"status": "ESME_ROK"}`` for v3 SMS and OTP sends, no id.
    - ``v1_params``: ``"query"`` (default: v1 takes its parameters only in the
      query string, as the v1 document's examples send them; a body is a 400)
      or ``"any"`` (also a form or JSON body).
    - ``limit_per_s`` / ``limit_burst``: the provider's own rate limit per account
      and product (sends/s, 0 = off; tokens, 0 = one second's worth); see
      :mod:`sandbox.limits`.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    rate_429: float = 0.0
    retry_after_s: int = 1
    throttle_rate: float = 0.0
    drop_rate: float = 0.0
    refusal_rate: float = 0.0
    refusal_status: str = "ESME_RSUBMITFAIL"
    ambiguous_charge_rate: float = 0.5
    applies_to: str = FAULTS_SEND_ONLY
    apis: tuple[str, ...] = API_NAMES
    seed: int = 0
    answers: str = ANSWERS_CHOSEN
    v1_params: str = V1_PARAMS_QUERY

    limit_per_s: float = 0.0
    limit_burst: int = 0

    def __post_init__(self) -> None:
        if not self.limit_per_s >= 0 or math.isinf(self.limit_per_s):
            raise ValueError(f"limit_per_s must be a number >= 0, got {self.limit_per_s!r}")
        if self.limit_burst < 0:
            raise ValueError(f"limit_burst must be >= 0, got {self.limit_burst!r}")
        for name in ("error_rate", "rate_429", "throttle_rate", "drop_rate", "refusal_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not 0.0 <= self.ambiguous_charge_rate <= 1.0:
            raise ValueError("ambiguous_charge_rate must be in [0, 1]")
        rates = self.error_rate + self.rate_429 + self.throttle_rate + self.drop_rate
        if rates + self.refusal_rate > 1.0:
            raise ValueError("the fault rates must add up to at most 1")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")
        if self.retry_after_s < 0:
            raise ValueError("retry_after_s must be >= 0")
        if self.applies_to not in (FAULTS_SEND_ONLY, FAULTS_ALL):
            raise ValueError(f"applies_to must be 'send' or 'all', got {self.applies_to!r}")
        status = self.refusal_status
        if not isinstance(status, str) or not status.startswith("ESME_") or status == "ESME_ROK":
            raise ValueError(f"refusal_status must be an ESME_ status other than ESME_ROK, "
                             f"got {status!r}")  # fmt: skip
        if not isinstance(self.apis, tuple) or not all(a in API_NAMES for a in self.apis):
            raise ValueError(f"apis must be a list of {', '.join(API_NAMES)}, got {self.apis!r}")
        if self.answers not in (ANSWERS_CHOSEN, ANSWERS_DOCUMENTED):
            raise ValueError(f"answers must be 'chosen' or 'documented', got {self.answers!r}")
        if self.v1_params not in (V1_PARAMS_QUERY, V1_PARAMS_ANY):
            raise ValueError(f"v1_params must be 'query' or 'any', got {self.v1_params!r}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; unknown keys raise ``KeyError``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise KeyError(sorted(unknown)[0])
        values = dict(changes)
        if isinstance(values.get("apis"), list):  # JSON has no tuples
            values["apis"] = tuple(values["apis"])
        return dataclasses.replace(self, **values)


def _default_sms_balances() -> dict[int, int]:
    return dict.fromkeys(COUNTRY_NAMES, 100_000_000)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything the sandbox needs at start-up.

    - ``step_delay_s``: seconds between status steps
      (``EN_COLA → ENVIADO_A_CARRIER → ENTREGADO|NO_ENTREGABLE``).
    - ``tick_interval_s``: seconds between two runs of the scheduler loop.
    - ``undeliverable_rate``: probability a message ends ``NO_ENTREGABLE``.
    - ``email_open_rate`` / ``email_click_rate``: probability a delivered e-mail
      gets an ``ABIERTO`` / ``CLICKEADO`` event one step later.
    - ``otp_units_per_segment``: units charged per 160-character segment of an OTP
      (a regular SMS costs 1 per segment).
    - ``webhook_*``: retries after the first failed POST, backoff base (s),
      per-POST timeout (s), concurrent POSTs, and the queue bound (oldest
      notifications are dropped, and counted, beyond it).
    - ``time_zone``: the account time zone for ``deliver_at`` and date reports.
    """

    api_user: str = DEFAULT_API_USER
    api_key: str = DEFAULT_API_KEY
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    step_delay_s: float = 0.05
    tick_interval_s: float = 0.01
    undeliverable_rate: float = 0.0
    email_open_rate: float = 0.5
    email_click_rate: float = 0.2
    otp_units_per_segment: int = 2
    sms_balances: Mapping[int, int] = field(default_factory=_default_sms_balances)
    email_balance: int = 100_000_000
    whatsapp_balance: int = 100_000_000
    sms_status_hook_url: str | None = None
    sms_incoming_hook_url: str | None = None
    webhook_retries: int = 3
    webhook_backoff_s: float = 0.2
    webhook_timeout_s: float = 5.0
    webhook_concurrency: int = 4
    webhook_queue_max: int = 100_000
    time_zone: str = "America/Santiago"
    bulk_max: int = 1000
    # More accounts, (api_user, api_key) each: own balances, ledger, faults and
    # provider limit (sandbox.accounts); api_user/api_key above is the first.
    accounts: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.api_user or not self.api_key:
            raise ValueError("api_user and api_key must be non-empty")
        users = [self.api_user, *(user for user, _ in self.accounts)]
        if len(set(users)) != len(users) or not all(all(pair) for pair in self.accounts):
            raise ValueError("accounts: each needs a user and a key, and no user twice")
        for name in ("undeliverable_rate", "email_open_rate", "email_click_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.step_delay_s < 0 or self.tick_interval_s <= 0:
            raise ValueError("step_delay_s must be >= 0 and tick_interval_s > 0")
        if self.otp_units_per_segment < 1:
            raise ValueError("otp_units_per_segment must be >= 1")
        if self.webhook_concurrency < 1 or self.webhook_retries < 0:
            raise ValueError("webhook_concurrency must be >= 1 and webhook_retries >= 0")


def config_from_env(environ: Mapping[str, str], **overrides: Any) -> SandboxConfig:
    """Build the config from ``CONNECTUS_API_USER`` / ``CONNECTUS_API_KEY`` plus overrides.

    Called once by the entry points with ``os.environ``; never at import time.
    """
    user = environ.get("CONNECTUS_API_USER") or DEFAULT_API_USER
    key = environ.get("CONNECTUS_API_KEY") or DEFAULT_API_KEY
    return SandboxConfig(api_user=user, api_key=key, **overrides)
