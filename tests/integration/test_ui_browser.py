"""The web UI in a real browser (headless Debian Chromium driven by Playwright): sign in,
create a canary, check in, watch it go down and up without reloading, create a key, send
events and see the chart change; the live indicator when the server stops answering; and a
screenshot of every page into docs/screenshots/ (the README shows two, docs/web-ui.md all)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest_api.ui import svg
from tests.conftest import wait_for
from tests.integration.browser import chromium_or_reason
from tests.integration.harness import Stack

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DEADLINE_MS = 30_000
BASELINE_Y = float(svg.HEIGHT - svg.PAD_BOTTOM)  # where a zero is drawn
PROBLEMS: list[str] = []  # console errors of the current test's page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable, reason = chromium_or_reason()
    if executable is None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    problems = PROBLEMS
    problems.clear()
    # A CSP violation or a script error shows in the console: the test fails on it.
    opened.on(
        "console",
        lambda m: m.type == "error" and "ui/live" not in m.text and problems.append(m.text),
    )
    opened.on("pageerror", lambda e: problems.append(str(e)))
    yield opened
    context.close()
    assert problems == []


def sign_in(page: Any, stack: Stack) -> None:
    page.goto(stack.url + "/")
    assert page.url.endswith("/login")
    page.fill("input[name=token]", stack.settings.admin_token)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(stack.url + "/")


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_canary_goes_down_and_up_before_your_eyes(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    page.goto(stack.url + "/login")
    shot(page, "login")
    sign_in(page, stack)
    name = f"backup-{uuid.uuid4().hex[:6]}"
    page.click("text=Canaries")
    page.click("text=New canary")
    shot(page, "canary-form")
    page.fill("input[name=name]", name)
    page.fill("input[name=interval]", "8s")  # up for 8 s after each check-in: ui.js asks every 2 s
    page.click("form[action='/canaries'] button[type=submit]")
    ping_url = page.input_value("#ping-url")
    assert "/checkin/" in ping_url
    shot(page, "canary-created")

    page.goto(stack.url + "/canaries")
    row = page.locator("tr", has_text=name)
    badge = row.locator("[data-status]")
    expect(badge).to_have_text("new")
    assert httpx.get(ping_url, params={"message": "nightly run ok"}).status_code == 200
    # No reload from here on: ui.js updates the row.
    expect(badge).to_have_text("up", timeout=DEADLINE_MS)
    expect(row.locator('[data-field="last_message"]')).to_have_text(
        "nightly run ok", timeout=DEADLINE_MS
    )
    expect(badge).to_have_text("down", timeout=DEADLINE_MS)  # 8 s without a check-in
    expect(page.locator("#counts [data-count=down]")).not_to_have_text(
        "0 down", timeout=DEADLINE_MS
    )
    shot(page, "canaries")
    assert httpx.get(ping_url).status_code == 200
    expect(badge).to_have_text("up", timeout=DEADLINE_MS)
    page.goto(stack.url + "/")
    shot(page, "overview")
    page.goto(stack.url + "/canaries")
    page.click(f"text={name}")
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator("table").first).to_contain_text("success", timeout=DEADLINE_MS)
    shot(page, "canary")
    page.click("button:has-text('Delete')")
    expect(page.locator(".notice")).to_have_text("Deleted.")


def test_the_page_says_when_it_lost_the_connection(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    sign_in(page, stack)
    page.goto(stack.url + "/canaries")
    banner = page.locator("#connection")
    expect(banner).to_be_hidden()
    page.route("**/ui/live*", lambda route: route.abort())
    expect(banner).to_be_visible(timeout=DEADLINE_MS)
    page.unroute("**/ui/live*")
    expect(banner).to_be_hidden(timeout=DEADLINE_MS)
    PROBLEMS[:] = [p for p in PROBLEMS if "ERR_FAILED" not in p]  # the aborted requests


def test_a_new_key_sends_events_and_the_chart_changes(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    sign_in(page, stack)
    page.click("text=Admin")
    key_name = f"browser-{uuid.uuid4().hex[:6]}"
    page.fill("form[action='/admin/keys'] input[name=name]", key_name)
    page.click("form[action='/admin/keys'] button")
    secret = page.input_value("#new-key")
    assert secret.startswith("ch_live_")
    shot(page, "admin")
    event_name = f"checkout.{uuid.uuid4().hex[:6]}"
    chart_page = f"{stack.url}/events?names={event_name}&range=1h"
    page.goto(chart_page)
    series = page.locator("#events-chart path.series")
    before = series.get_attribute("d")
    assert {float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", before)} == {
        BASELINE_Y
    }  # all zero
    events = [{"type": "event", "name": event_name, "value": float(i)} for i in range(40)]
    sent = httpx.post(
        f"{stack.url}/api/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert sent.status_code == 202, sent.text

    def chart_changed() -> bool:
        page.goto(chart_page)
        return series.get_attribute("d") != before

    wait_for(chart_changed, 30, "the events on the chart", every_s=0.5)
    assert (
        max(float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", series.get_attribute("d")))
        == BASELINE_Y
    )
    assert (
        min(float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", series.get_attribute("d")))
        < BASELINE_Y
    )
    expect(page.locator("table").last).to_contain_text("39")
    shot(page, "events")
    page.click("text=Errors")
    expect(page.locator("h1")).to_have_text("Errors")
    shot(page, "errors")
