"""Cases in a real browser: the deadline extension is the complaint head's alone, and a caller name
with markup in it is shown as text, never run."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import Dialog, Page, expect

from callcenter.db import Database
from callcenter.models import Case, User
from callcenter.services import cases
from callcenter.settings import Settings
from tests.web.factories import Account, make_account, make_call

SCRIPT_NAME = '<script>alert("pwned")</script>王'


def sign_in(page: Page, base: str, account: Account) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_be_visible()  # signed in, on the user's desk


def sign_out(page: Page) -> None:
    page.click("form.logout button")
    expect(page).to_have_url(re.compile(r"/login"))


def registered_case(db: Database, agent: Account, now: datetime) -> tuple[int, str]:
    with db.transaction() as session:
        user = session.get(User, agent.id)
        assert user is not None
        new = cases.NewCase(
            case_type="complaint", title="门打不开", content="设备门打不开", category="product"
        )
        case = cases.register_case(
            session, new, user=user, policy=cases.CasePolicy.from_settings(Settings()), now=now
        )
        return case.id, case.number


@pytest.mark.browser
def test_an_agent_cannot_extend_but_the_complaint_head_can(
    page: Page, live_server: str, db: Database, now: datetime, browser_errors: list[str]
) -> None:
    agent = make_account(db, now, "agent", ("agent_complaint",))
    head = make_account(db, now, "head", ("complaint_head",))
    case_id, number = registered_case(db, agent, now)

    sign_in(page, live_server, agent)
    page.goto(f"{live_server}/cases/{case_id}")
    expect(page.locator("h1.case-number")).to_have_text(number)
    expect(page.locator("form[data-action=escalate]")).to_be_visible()  # the agent has actions …
    expect(page.locator("form[data-action=extend]")).to_have_count(0)  # … but not this one
    before = page.locator("dd.resolution-due").inner_text()
    sign_out(page)

    sign_in(page, live_server, head)
    page.goto(f"{live_server}/cases/{case_id}")
    extend = page.locator("form[data-action=extend]")
    extend.locator("input[type=date]").fill("2026-12-31")
    extend.locator("textarea").fill("等待厂家配件")
    extend.locator("button[type=submit]").click()
    expect(page.locator(".flash-info")).to_have_text("期限已延长。")
    expect(page.locator("dd.resolution-due")).to_have_text("2026-12-31 23:59:59")
    assert before != "2026-12-31 23:59:59"
    row = page.locator("table.history tbody tr", has_text="期限已延长")
    expect(row).to_contain_text("等待厂家配件")
    expect(row).to_contain_text("head")
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.resolution_due_at.isoformat() == "2026-12-31T15:59:59+00:00"
    assert browser_errors == []


@pytest.mark.browser
def test_a_caller_name_with_markup_is_shown_as_text(
    page: Page, live_server: str, db: Database, now: datetime, browser_errors: list[str]
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    agent = make_account(db, now, "agent", ("agent_complaint",))
    call_id = make_call(db, now, external_id="xss-1", start=now, caller_name=SCRIPT_NAME)

    sign_in(page, live_server, agent)
    page.goto(f"{live_server}/cases/new?call_id={call_id}")
    expect(page.locator("#contact_name")).to_have_value(SCRIPT_NAME)
    expect(page.locator("#case_type")).to_have_value("complaint")  # a complaint-queue call
    page.fill("#title", "设备门打不开")
    page.click("form.case-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/cases/\d+$"))
    expect(page.locator("dd.name")).to_have_text(SCRIPT_NAME)
    expect(page.locator("table.linked-calls tbody tr")).to_have_count(1)
    page.goto(f"{live_server}/cases")
    expect(page.locator("table.cases td.name")).to_have_text(SCRIPT_NAME)
    expect(page.locator("table.cases td.number")).to_have_text("138****8000")
    assert dialogs == [] and browser_errors == []
