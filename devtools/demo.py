"""``connectus demo``: the whole system on this machine, with faults switched on.

Starts (or reuses) Redis, the sandbox with latency, 5xx, 429, throttling and
dropped answers (``--answers documented``: send answers exactly as the Connectus
collection shows them, without ids), and supervised workers; queues a mix of SMS, OTP, e-mail
and WhatsApp messages with a progress bar; waits for every job to settle;
prints what happened, checked against the sandbox's charge ledger, and the
address and login of the operator console (``connectus serve`` at ``/ui``). From
a terminal the stack stays up until Ctrl-C, to look at the messages there;
without one (or with ``--exit``) it stops at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from connectus_worker.config.console_users import MIN_ITERATIONS, hash_password
from connectus_worker.domain.models import State
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack

SETTLED = {State.SENT.value, State.FAILED.value, State.UNKNOWN.value, State.CANCELLED.value}
FAULTS = {
    "latency_ms": 20,
    "error_rate": 0.04,
    "rate_429": 0.03,
    "throttle_rate": 0.03,
    "drop_rate": 0.01,
}
FAST_RETRIES = {
    "RETRY_INITIAL_BACKOFF_MS": "50",
    "RETRY_MAX_BACKOFF_MS": "400",
    "DURABLE_MIN_BACKOFF_MS": "500",
    "DURABLE_MAX_BACKOFF_MS": "3000",
    # Unknown jobs looked up, and ids of sends answered without one, within seconds.
    "RECONCILE_AFTER_S": "2",
    "RECONCILE_INTERVAL_S": "1",
    "LOG_LEVEL": "WARNING",
}
#: The demo's console login (RUN_MODE=sandbox: published, like the sandbox key).
CONSOLE_LOGIN = ("demo", "connectus-demo")
CONSOLE_ENV = {
    "INTAKE_TOKENS": "demo-intake-token-not-secret",
    "WEBHOOK_SECRET": "demo-webhook-secret-not-secret",
    "CONSOLE_SECRET_KEY": "connectus-demo-console-key-not-secret",
}
#: The error class of an accepted answer read as ambiguous (the old reading of an
#: id-less ESME_ROK): none is expected in either answer mode.
MISSING_ID = "MalformedResponse"


def _enqueue_one(producer: Producer, i: int, rng: random.Random) -> str:
    number = f"5698{rng.randrange(10**7):07d}"
    roll = rng.random()
    if roll < 0.55:
        # 2% name a subclient that does not exist: a permanent failure (404).
        client = "no-such-client" if rng.random() < 0.04 else None
        return producer.send_sms(
            number, f"Demo SMS #{i}", id_client=client, idempotency_key=f"demo-{i}"
        )
    if roll < 0.65:
        return producer.send_otp(number, f"Tu codigo es {rng.randrange(10**6):06d} (#{i})")
    if roll < 0.82:
        return producer.send_email(
            f"cliente{i}@example.com",
            f"Demo #{i}",
            f"<p>Hola #{i}</p>",
            src_email="contacto@empresa.cl",
        )
    if roll < 0.95:
        return producer.send_whatsapp(number, f"Demo WhatsApp #{i}", src_number="56999944837")
    return producer.send_whatsapp_qr(number, f"Demo QR #{i}")


def run_demo(
    *,
    messages: int,
    processes: int,
    threads: int,
    timeout_s: float,
    answers: str = "chosen",
    redis_url: str | None = None,
    key_prefix: str | None = None,
    console: Console | None = None,
    keep_up: bool = False,
    wait: Callable[[str], None] | None = None,
) -> int:
    """Run the demo; ``answers``: the sandbox's answer mode (``chosen`` or ``documented``).

    ``keep_up``: after the summary, keep the stack and the console up until
    ``wait(console_url)`` returns (default: until Ctrl-C).

    ``redis_url`` / ``key_prefix`` (tests): a given Redis and prefix instead of
    the stack's own choice and a fresh random prefix.
    """
    console = console or Console()
    rng = random.Random(7)
    flags = {**FAULTS, "answers": answers}
    name, password = CONSOLE_LOGIN
    users = f"{name}:admin:{hash_password(password, iterations=MIN_ITERATIONS)}"
    env = {**FAST_RETRIES, **CONSOLE_ENV, "CONSOLE_USERS": users,
           **({"KEY_PREFIX": key_prefix} if key_prefix else {})}  # fmt: skip
    with LocalStack(
        redis_url=redis_url, sandbox_flags=flags, processes=processes, threads=threads, env=env
    ) as stack:
        console.print(
            f"sandbox {stack.sandbox_url} with faults {flags}; Redis {stack.env['REDIS_URL']}"
        )
        producer = Producer(stack.settings)
        job_ids: list[str] = []
        with Progress(console=console, transient=False) as progress:
            queued = progress.add_task("queueing", total=messages)
            for i in range(messages):
                job_ids.append(_enqueue_one(producer, i, rng))
                progress.advance(queued)
            settled_task = progress.add_task("delivering", total=messages)
            deadline = time.monotonic() + timeout_s
            states: list[str] = []
            while time.monotonic() < deadline:
                states = _states(producer, job_ids)
                done = sum(state in SETTLED for state in states)
                progress.update(settled_task, completed=done)
                if done == len(job_ids):
                    break
                time.sleep(0.25)
            # Sends answered without an id are looked up after RECONCILE_AFTER_S.
            while time.monotonic() < deadline and _lookups_pending(producer, job_ids):
                time.sleep(0.25)
        records = [producer.get_status(job_id) for job_id in job_ids]
        with stack.sandbox_client() as sandbox:
            ledger = sandbox.get("/_sandbox/ledger").json()
            stats = sandbox.get("/_sandbox/stats").json()
        if not keep_up:
            stack.stop_worker_supervisor()
        code = _report(console, records, ledger, _faults_seen(stats))
        if keep_up:
            url = stack.start_service()
            console.print(f"operator console: {url}/ui/  log in as {name} / {password}")
            console.print("the stack stays up: press Ctrl-C to stop it")
            try:
                (wait or _forever)(f"{url}/ui/")
            except KeyboardInterrupt:
                console.print("stopping")
        else:
            console.print(f"operator console (login {name} / {password}): not started; run "
                          "`make demo` from a terminal, without --exit, to keep the stack "
                          "and the console up")  # fmt: skip
    return code


def _forever(_: str) -> None:
    threading.Event().wait()


def _faults_seen(stats: dict[str, Any]) -> Counter[str]:
    """Answers the sandbox gave that were not a plain success, by status."""
    seen: Counter[str] = Counter()
    for by_status in stats.get("requests", {}).values():
        for status, count in by_status.items():
            if status == "dropped" or status.startswith(("4", "5")):
                seen[status] += count
    return seen


def _lookups_pending(producer: Producer, job_ids: list[str]) -> bool:
    pipe = producer.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(producer.store.keys.job(job_id), "provider_id_lookup")
    return b"pending" in pipe.execute()


def _states(producer: Producer, job_ids: list[str]) -> list[str]:
    pipe = producer.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(producer.store.keys.job(job_id), "state")
    return [value.decode() if value else "missing" for value in pipe.execute()]


def _report(
    console: Console, records: list[Any], ledger: dict[str, Any], faults: Counter[str]
) -> int:
    states = Counter(record.state.value for record in records)
    retried = sum(record.attempts > 1 for record in records)
    reasons = Counter(
        record.error_class for record in records if record.state.value in ("failed", "unknown")
    )
    # Every demo message has unique content, so two charges of one
    # (destination, content) pair would be a double send.
    charges = Counter((c["dst"], c["content_sha256"]) for c in ledger.get("charges", []))
    duplicates = sum(count > 1 for count in charges.values())
    table = Table(title="demo summary")
    table.add_column("what")
    table.add_column("count", justify="right")
    for state in ("sent", "failed", "unknown", "retrying", "queued", "sending"):
        table.add_row(state, str(states.get(state, 0)))
    for status, count in sorted(faults.items()):
        table.add_row(f"sandbox answered {status}", str(count))
    table.add_row("jobs retried durably (attempts > 1)", str(retried))
    lookups = Counter(r.provider_id_lookup for r in records if r.provider_id_lookup)
    for lookup, count in sorted(lookups.items()):
        table.add_row(f"sent without a provider id, looked up: {lookup}", str(count))
    missing_id = sum(r.state.value == "unknown" and r.error_class == MISSING_ID for r in records)
    table.add_row("unknown for want of a provider id", str(missing_id))
    for reason, count in reasons.most_common():
        table.add_row(f"  reason: {reason}", str(count))
    table.add_row("charges in the sandbox ledger", str(sum(charges.values())))
    table.add_row("messages charged twice", str(duplicates))
    console.print(table)
    unsettled = len(records) - sum(states.get(s, 0) for s in SETTLED)
    if unsettled or duplicates or missing_id:
        console.print(
            f"[red]FAILED[/red]: {unsettled} unsettled job(s), {duplicates} duplicate charge(s), "
            f"{missing_id} unknown for want of a provider id"
        )
        return 1
    console.print("[green]OK[/green]: every job settled; nothing charged twice")
    return 0
