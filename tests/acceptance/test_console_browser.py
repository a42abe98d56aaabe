"""The operator console in a real browser: Debian's headless Chromium driven by Playwright
against a real ``connectus serve``, Redis, the sandbox and a worker process.

One stack and one browser for the module (each costs seconds); the tests run in file
order and each sends to numbers of its own. Every page is screenshotted into
``test-artifacts/console/`` (docs/console.md; two of them are in the README).
Judged by the sandbox's charge ledger and the job records, not by the page alone.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from connectus_worker.campaign.model import Transport
from connectus_worker.campaign.options import CampaignOptions
from connectus_worker.config.console_users import MIN_ITERATIONS, hash_password
from connectus_worker.domain.models import State
from connectus_worker.ledger.deadletters import DeadLetters
from connectus_worker.ledger.jobs import JobStore
from connectus_worker.ledger.keys import Keys
from connectus_worker.producers.api import Producer
from devtools.stack import LocalStack
from tests.support.redis_namespace import delete_prefix, new_prefix
from tests.support.stack_checks import campaign_tools, ledger, numbers, set_faults
from tests.support.waiting import wait_for

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):  # CI installs it (.ci/run); nothing downloads a browser
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)",
                allow_module_level=True)  # fmt: skip

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
ADMIN, VIEWER = ("ana", "admin-password-1"), ("vic", "viewer-password-1")
ENV = {
    "INTAKE_TOKENS": "tok-A-0123456789abcdef",
    "WEBHOOK_SECRET": "hook-0123456789abcdef",
    "CONSOLE_SECRET_KEY": "console-secret-key-0123456789abcdef",
    "CONSOLE_USERS": f"ana:admin:{hash_password(ADMIN[1], iterations=MIN_ITERATIONS)};"
    f"vic:read-only:{hash_password(VIEWER[1], iterations=MIN_ITERATIONS)}",
    # A campaign slow enough to pause mid-way: 20 sends a second.
    "RATE_SMS_PER_S": "20",
    "RATE_SMS_BURST": "5",
    "RATE_MIN_PER_S": "1",
    "CAMPAIGN_MAX_PENDING": "1000",
    "RETRY_INITIAL_BACKOFF_MS": "20",
    "RETRY_MAX_BACKOFF_MS": "100",
    "DURABLE_MIN_BACKOFF_MS": "200",
    "DURABLE_MAX_BACKOFF_MS": "1000",
    "LOG_LEVEL": "WARNING",
}
CAMPAIGN_SIZE = 160
#: Errors the pages logged in the browser's console (none expected).
BROWSER_ERRORS: list[str] = []
#: A campaign due then stays scheduled for the whole test.
LATER = (datetime.now(UTC) + timedelta(days=30)).isoformat()


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    prefix = new_prefix()
    stack = LocalStack(redis_url=redis_url, env={**ENV, "KEY_PREFIX": prefix}, processes=1,
                       threads=4, log_dir=tmp_path_factory.mktemp("console-stack"))  # fmt: skip
    try:
        stack.start()
        stack.start_service()
        yield stack
    finally:
        stack.stop()
        client = redis.Redis.from_url(redis_url)
        try:
            delete_prefix(client, prefix)
        finally:
            client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])  # fmt: skip
        yield chromium
        chromium.close()


def _login(browser: Any, stack: LocalStack, who: tuple[str, str]) -> Any:
    """A new page of a new browser context, logged in as ``who``; dialogs are accepted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  base_url=stack.service_url, accept_downloads=True)  # fmt: skip
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    # A script or style the Content-Security-Policy blocks shows up here.
    page.on("console", lambda m: m.type == "error" and BROWSER_ERRORS.append(m.text))
    page.goto("/ui/")
    assert page.url.endswith("/ui/login")
    page.get_by_label("Name").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/ui/$"))
    return page


@pytest.fixture(scope="module")
def admin(browser: Any, stack: LocalStack) -> Iterator[Any]:
    page = _login(browser, stack, ADMIN)
    yield page
    page.context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _store(stack: LocalStack) -> JobStore:
    settings = stack.settings
    return JobStore(redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix),
                    ttl_s=settings.job_ttl_s)  # fmt: skip


def test_log_in_and_see_the_overview(browser: Any, stack: LocalStack, admin: Any) -> None:
    login = browser.new_page(base_url=stack.service_url)
    login.goto("/ui/login")
    shot(login, "login")
    login.close()
    page = admin
    assert page.get_by_role("heading", name="Queues").is_visible()
    assert "ana (admin)" in page.content()
    # The worker process shows up with its pod and pid (its heartbeat), after a refresh.
    wait_for(lambda: page.reload() or "no worker process has a heartbeat" not in page.content(),
             timeout_s=30, what="the worker's heartbeat on the overview")  # fmt: skip
    assert page.get_by_role("heading", name="Rate limits").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone's width
    shot(page, "overview-phone")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_replay_a_dead_letter_and_see_it_sent(stack: LocalStack, admin: Any) -> None:
    producer = Producer(stack.settings)
    dst = numbers(1, start=500)[0]
    set_faults(stack, refusal_rate=1.0, refusal_status="ESME_RX_R_APPN")
    try:
        job_id = producer.send_sms(dst, "console replay")
        letters = DeadLetters(_store(stack))
        wait_for(lambda: letters.get(job_id), timeout_s=30, what="the job dead-lettered")
    finally:
        set_faults(stack, refusal_rate=0.0)
    assert dst not in {c["dst"] for c in ledger(stack)}
    page = admin
    page.goto("/ui/deadletters")
    page.get_by_label(f"select {job_id}").check()
    shot(page, "deadletters")
    page.get_by_role("button", name="Replay selected").click()
    page.wait_for_url(re.compile(r"/ui/deadletters"))
    assert "replayed 1 of 1" in page.get_by_role("status").inner_text()
    wait_for(lambda: producer.get_status(job_id).state is State.SENT, timeout_s=30,
             what="the replayed job sent")  # fmt: skip
    assert [c["dst"] for c in ledger(stack)].count(dst) == 1
    assert letters.get(job_id) is None


def _charges(stack: LocalStack, dsts: set[str]) -> int:
    return sum(1 for c in ledger(stack) if c["dst"] in dsts)


def _steady(stack: LocalStack, dsts: set[str], quiet_s: float) -> Any:
    """A probe: the charge count once it has not changed for ``quiet_s``."""
    seen: dict[str, Any] = {"count": -1, "since": time.monotonic()}

    def probe() -> int | None:
        count = _charges(stack, dsts)
        if count != seen["count"]:
            seen.update(count=count, since=time.monotonic())
            return None
        return count if time.monotonic() - seen["since"] >= quiet_s else None

    return probe


def test_a_campaign_progresses_pauses_and_resumes(stack: LocalStack, admin: Any,
                                                  tmp_path: Path) -> None:  # fmt: skip
    producer, control = campaign_tools(stack)
    dsts = numbers(CAMPAIGN_SIZE, start=1_000)
    options = CampaignOptions(name="spring sale", text="Hola {name}", transport=Transport.V3)
    cid = producer.send([{"dst_number": d, "name": "x"} for d in dsts], options).campaign_id
    page = admin
    page.goto("/ui/campaigns")
    page.get_by_role("link", name="spring sale").click()
    page.wait_for_url(re.compile(f"/ui/campaigns/{cid}$"))
    # Progress shows on the page (htmx refreshes it every 2 s).
    done = page.locator("[data-campaign-done]")
    wait_for(lambda: int(done.inner_text()) >= 20, timeout_s=30, what="progress on the page")
    page.get_by_role("button", name="Pause").click()
    page.wait_for_url(re.compile(f"/ui/campaigns/{cid}"))
    assert "pause: done" in page.get_by_role("status").inner_text()
    # The workers stop: the sandbox's charge count stops rising, short of the whole list.
    wanted = set(dsts)
    paused = wait_for(_steady(stack, wanted, 2.0), timeout_s=30, what="charges to stop")
    assert paused < CAMPAIGN_SIZE
    assert "paused" in page.locator("[data-campaign-state]").inner_text()
    shot(page, "campaign")
    assert _charges(stack, wanted) == paused
    page.get_by_role("button", name="Resume").click()
    page.wait_for_url(re.compile(f"/ui/campaigns/{cid}"))
    wait_for(lambda: _charges(stack, wanted) == CAMPAIGN_SIZE, timeout_s=60,
             what="every recipient charged after resume")  # fmt: skip
    wait_for(lambda: control.get(cid).state.value == "finished", timeout_s=30,
             what="the campaign finished")  # fmt: skip
    page.goto("/ui/campaigns")
    shot(page, "campaigns")
    page.goto(f"/ui/campaigns/{cid}")
    # Sends over time: every recipient, counted from their records (a small campaign).
    assert f"sent {CAMPAIGN_SIZE}," in page.locator("figcaption").first.inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download the report")).click()
    path = tmp_path / "report.csv"
    download.value.save_as(str(path))
    text = path.read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == CAMPAIGN_SIZE and {r["state"] for r in rows} == {"sent"}
    assert not any(d in text for d in dsts)  # recipients masked


def test_find_a_job_by_idempotency_key_and_by_recipient(stack: LocalStack, admin: Any) -> None:
    producer = Producer(stack.settings)
    dst = numbers(1, start=600)[0]
    job_id = producer.send_sms(dst, "console search", idempotency_key="console-browser-key-1")
    wait_for(lambda: producer.get_status(job_id).state is State.SENT, timeout_s=30,
             what="the job sent")  # fmt: skip
    page = admin
    for query in ("console-browser-key-1", f"+{dst[:2]} {dst[2]} {dst[3:7]} {dst[7:]}"):
        page.goto("/ui/search")
        page.get_by_label(re.compile("Job id, idempotency key")).fill(query)
        page.get_by_role("button", name="Search").click()
        heading = page.get_by_role("heading", name=f"Job {job_id}")
        heading.wait_for()
        assert page.locator("[data-job-state]").first.inner_text() == "sent"
        article = page.locator("article.job").first.inner_text()
        assert dst not in article, article  # masked, as in the logs
        assert "console search" not in page.content()  # content is never shown
    shot(page, "search")


def test_review_and_opt_out_pages(stack: LocalStack, admin: Any) -> None:
    page = admin
    page.goto("/ui/review")
    assert "Held for review" in page.content()
    shot(page, "review")
    dst = numbers(1, start=700)[0]
    page.goto("/ui/optouts")
    page.get_by_label("Phone number (in full)").fill(dst)
    page.get_by_role("button", name="Opt out").click()
    page.wait_for_url(re.compile("/ui/optouts"))
    assert "opted out" in page.get_by_role("status").inner_text()
    assert dst not in page.content()
    shot(page, "optouts")


def test_a_read_only_operator_cannot_act(browser: Any, stack: LocalStack) -> None:
    producer, control = campaign_tools(stack)
    options = CampaignOptions(name="read only", text="Hola", transport=Transport.V3,
                              deliver_at=LATER)  # fmt: skip
    cid = producer.send([{"dst_number": d} for d in numbers(3, start=800)], options).campaign_id
    page = _login(browser, stack, VIEWER)
    try:
        page.goto(f"/ui/campaigns/{cid}")
        assert "Read-only" in page.content()
        assert page.get_by_role("button", name="Pause").count() == 0
        token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        answer = page.request.post(f"/ui/campaigns/{cid}/cancel", form={"csrf_token": token})
        assert answer.status == 403 and "read-only" in answer.text()
        assert control.get(cid).state.value == "scheduled"
    finally:
        page.context.close()


def test_a_post_without_the_csrf_token_is_refused(stack: LocalStack, admin: Any) -> None:
    producer, control = campaign_tools(stack)
    options = CampaignOptions(name="csrf", text="Hola", transport=Transport.V3,
                              deliver_at=LATER)  # fmt: skip
    cid = producer.send([{"dst_number": d} for d in numbers(3, start=900)], options).campaign_id
    answer = admin.request.post(f"/ui/campaigns/{cid}/cancel", form={})
    assert answer.status == 403 and "CSRF" in answer.text()
    assert control.get(cid).state.value == "scheduled"
    # The same request with the page's token is accepted (the refusal was the token's).
    admin.goto(f"/ui/campaigns/{cid}")
    token = admin.locator("input[name=csrf_token]").first.get_attribute("value")
    done = admin.request.post(f"/ui/campaigns/{cid}/cancel", form={"csrf_token": token})
    assert done.ok
    assert control.get(cid).state.value == "cancelled"


def test_the_overview_charts_what_was_sent(stack: LocalStack, admin: Any) -> None:
    """Last (the sends above are in it): the hour's chart counts them, as text too."""
    admin.goto("/ui/")
    caption = admin.locator("figcaption").first.inner_text()
    match = re.search(r"sent (\d+), failed (\d+)", caption)
    assert match, caption
    assert int(match.group(1)) >= CAMPAIGN_SIZE + 2  # the campaign, the replay, the search
    admin.get_by_text("Numbers").first.click()
    assert admin.locator("figure table tbody tr").first.is_visible()
    shot(admin, "overview")
    # 403s answered on purpose (read-only, CSRF) are logged as failed resources; nothing else.
    assert [e for e in BROWSER_ERRORS if "403" not in e] == []
