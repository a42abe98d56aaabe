"""Webhook delivery: one bounded queue drained by a fixed pool of senders.

The state calls :meth:`WebhookDispatcher.enqueue` (synchronous, O(1)) on every
SMS status change and on a simulated incoming SMS; request handling never waits
for a webhook. ``webhook_concurrency`` sender loops share one ``httpx.AsyncClient``
(never a task per message). A failed POST (connection error or non-2xx) is
logged and re-queued after ``webhook_backoff_s * 2**attempt`` seconds, at most
``webhook_retries`` times. Beyond ``webhook_queue_max`` pending notifications the
oldest is dropped and counted, so a dead receiver cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

from sandbox.config import SandboxConfig

log = logging.getLogger("sandbox.webhooks")

_Item = tuple[str, dict[str, Any], int]  # (url, payload, attempt)


class WebhookDispatcher:
    """Queue + sender pool; start it inside the running event loop."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=config.webhook_queue_max)
        self.sent = 0
        self.failed_attempts = 0
        self.gave_up = 0
        self.dropped = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = 0

    def enqueue(self, url: str, payload: dict[str, Any]) -> None:
        self._put((url, payload, 0))

    def _put(self, item: _Item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.queue.get_nowait()  # drop the oldest: newest statuses matter most
            self.queue.task_done()
            self.dropped += 1
            self.queue.put_nowait(item)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        n = self.config.webhook_concurrency
        self._client = httpx.AsyncClient(
            timeout=self.config.webhook_timeout_s,
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
        )
        self._tasks = [asyncio.create_task(self._sender(), name=f"webhook-{i}") for i in range(n)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _sender(self) -> None:
        assert self._client is not None
        while True:
            url, payload, attempt = await self.queue.get()
            self._in_flight += 1
            try:
                await self._post(url, payload, attempt)
            finally:
                self._in_flight -= 1
                self.queue.task_done()

    async def _post(self, url: str, payload: dict[str, Any], attempt: int) -> None:
        assert self._client is not None
        try:
            response = await self._client.post(url, json=payload)
            if 200 <= response.status_code < 300:
                self.sent += 1
                return
            reason = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        self.failed_attempts += 1
        if attempt >= self.config.webhook_retries:
            self.gave_up += 1
            log.warning("webhook to %s failed (%s); giving up after %d tries", url, reason,
                        attempt + 1)  # fmt: skip
            return
        delay_s = self.config.webhook_backoff_s * (2**attempt)
        log.warning("webhook to %s failed (%s); retry in %.2fs", url, reason, delay_s)
        assert self._loop is not None
        # A timer handle, not a task: the retry re-enters the same queue.
        self._loop.call_later(delay_s, self._put, (url, payload, attempt + 1))

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "failed_attempts": self.failed_attempts,
            "gave_up": self.gave_up,
            "dropped": self.dropped,
            "pending": self.queue.qsize() + self._in_flight,
        }
