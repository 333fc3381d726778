"""A supervisor's first look: sign in through the real form, find a call, open its timeline."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import Page, expect

from callcenter.db import Database
from tests.web.factories import PASSWORD, make_account, make_call

HOSTILE_NAME = "<script>window.pwned=1</script>"


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/calls")
    expect(page).to_have_url(f"{base_url}/login?next=/calls")
    expect(page.locator("h1")).to_have_text("登录")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/calls")


@pytest.mark.browser
def test_call_log_and_timeline(
    page: Page, live_server: str, db: Database, now: datetime, browser_errors: list[str]
) -> None:
    call_id = make_call(db, now, external_id="1700000000.7", start=now, caller_name=HOSTILE_NAME)
    make_account(db, now, "lina", ("agent_complaint",))

    sign_in(page, live_server, "lina")
    row = page.locator(f"tr[data-call-id='{call_id}']")
    expect(row.locator(".name")).to_have_text(HOSTILE_NAME)  # shown as text, not run
    expect(row.locator(".number")).to_have_text("138****8000")
    expect(row.locator(".branch")).to_have_text("投诉")
    expect(row.locator(".path")).to_have_text("欢迎 → 主菜单 → 转投诉建议")
    assert page.evaluate("typeof window.pwned") == "undefined"

    row.locator("a").click()
    expect(page).to_have_url(f"{live_server}/calls/{call_id}")
    expect(page.locator("h1")).to_have_text(f"通话 {call_id}")
    timeline = page.locator("table.timeline tbody tr")
    expect(timeline).to_have_count(5)
    expect(timeline.last).to_contain_text("转入队列")  # ivr.route, by its display name
    expect(timeline.last.locator("td").nth(2)).to_have_attribute("title", "ivr.route")
    expect(timeline.last).to_contain_text("队列 complaint · 分支 投诉")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert browser_errors == []
