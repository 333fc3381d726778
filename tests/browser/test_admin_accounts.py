"""An admin creates an account with a role; that user sees only what the role opens; throttling."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import Page, expect

from callcenter.db import Database
from tests.web.factories import PASSWORD, make_account, make_call

NEW_PASSWORD = "qa-password-2026"


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def sign_out(page: Page) -> None:
    page.click("form.logout button")


@pytest.mark.browser
def test_admin_creates_a_qa_account_that_sees_only_the_call_log(
    page: Page, live_server: str, db: Database, now: datetime, browser_errors: list[str]
) -> None:
    make_account(db, now, "root", ("admin",))
    call_id = make_call(db, now, external_id="1700000000.9", start=now)

    sign_in(page, live_server, "root", PASSWORD)
    expect(page).to_have_url(f"{live_server}/admin/users")
    expect(page.locator("nav.mainnav")).not_to_contain_text("通话记录")  # the admin role reads no calls
    page.click("text=新建账号")
    page.fill("#username", "qa01")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    page.fill("#display_name", "质检一号")
    page.check("input[name=roles][value=qa]")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(f"{live_server}/admin/users")
    expect(page.locator(".flash-info")).to_have_text("账号 qa01 已创建。")
    expect(page.locator("tr[data-username=qa01] .roles")).to_have_text("质检")
    page.click("text=审计日志")
    expect(page.locator("table.audit tbody tr").first).to_contain_text("账号已创建")
    sign_out(page)

    sign_in(page, live_server, "qa01", NEW_PASSWORD)
    expect(page).to_have_url(f"{live_server}/qa/")  # QA's desk: the review queue
    expect(page.locator("header .who")).to_have_text("质检一号")
    # The call log and the QA workspace, nothing else (no administration, no cases, no console).
    expect(page.locator("nav.mainnav a")).to_have_count(2)
    expect(page.locator("nav.mainnav a").nth(0)).to_have_attribute("href", "/calls")
    expect(page.locator("nav.mainnav a").nth(1)).to_have_attribute("href", "/qa/")
    page.click("nav.mainnav >> text=通话记录")
    row = page.locator(f"tr[data-call-id='{call_id}']")
    expect(row.locator(".number")).to_have_text("138****8000")
    page.fill("#number", "1380013")  # part of a number: not for QA
    page.click("form.search button[type=submit]")
    expect(page.locator(".field-error")).to_have_text("请输入完整号码:您的角色不能按部分号码查询。")
    page.fill("#number", "138 0013 8000")
    page.click("form.search button[type=submit]")
    expect(page.locator("table.calls tbody tr")).to_have_count(1)
    assert browser_errors == []
    page.goto(f"{live_server}/admin/users")
    expect(page.locator("h1")).to_contain_text("403")
    assert [error for error in browser_errors if "403 (FORBIDDEN)" not in error] == []


@pytest.mark.browser
def test_repeated_failures_lock_the_account(
    page: Page, live_server: str, db: Database, now: datetime, browser_errors: list[str]
) -> None:
    make_account(db, now, "lina", ("agent_complaint",))
    for _ in range(4):
        sign_in(page, live_server, "lina", "wrong-password")
        expect(page.locator(".flash-error")).to_have_text("用户名或密码错误。")
    sign_in(page, live_server, "lina", "wrong-password")
    expect(page.locator(".flash-error")).to_contain_text("登录失败次数过多:该账号已锁定至")
    sign_in(page, live_server, "lina", PASSWORD)  # the right password is refused while locked
    expect(page).to_have_url(f"{live_server}/login")
    expect(page.locator(".flash-error")).to_contain_text("该账号已锁定至")
    assert browser_errors == []
