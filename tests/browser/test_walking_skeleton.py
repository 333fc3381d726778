"""The foundation's promise, end to end: a call placed by a simulated Asterisk over FastAGI is on
the calls page, in the complaint queue, with its IVR path and timeline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from callcenter.db import Database
from callcenter.services import calls
from callcenter.services.demo import seed_demo
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import FastAGIServer, RunningServer
from callcenter.voice.agi.simulate import CallScript, simulate_call
from tests.conftest import make_settings


@pytest.fixture
def fastagi(tmp_path: Path, db: Database, now: datetime) -> Iterator[FastAGIServer]:
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password")
    server = build_server(make_settings(tmp_path, db.url), db, lambda: now, port=0)
    with RunningServer(server):
        yield server


@pytest.mark.browser
def test_simulated_call_appears_on_the_calls_page(
    page: Page, live_server: str, fastagi: FastAGIServer, db: Database, browser_errors: list[str]
) -> None:
    result = simulate_call("127.0.0.1", fastagi.port, CallScript(inputs=["5", "2"], caller_name='王 "小明"'))
    assert result.queue == "complaint" and result.call_id == result.linkedid
    assert fastagi.fallback.recorder.flush()
    with db.read() as session:
        call_id = calls.id_for_key(session, "asterisk", result.linkedid)

    page.goto(f"{live_server}/login")
    page.fill("#username", "admin")
    page.fill("#password", "admin-password")
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_be_visible()
    page.click("nav.mainnav >> text=通话记录")
    expect(page).to_have_url(re.compile(r"/calls$"))

    row = page.locator(f"tr[data-call-id='{call_id}']")
    expect(row.locator(".name")).to_have_text('王 "小明"')
    expect(row.locator(".number")).to_have_text("138****8000")
    expect(row.locator(".branch")).to_have_text("投诉")
    expect(row.locator(".path")).to_have_text("欢迎 → 服务时间判断 → 主菜单 → 转投诉建议")

    row.locator("a").click()
    timeline = page.locator("table.timeline tbody tr")
    expect(timeline.filter(has_text="无效按键")).to_have_count(1)  # the wrong key pressed first
    expect(timeline.last).to_contain_text("转入队列")
    expect(page.locator("body")).to_contain_text("+8613800138000")  # an admin sees the full number
    page.goto(f"{live_server}/calls/asterisk/{result.linkedid}")  # CC_CALL_ID leads to the same page
    expect(page).to_have_url(re.compile(rf"/calls/{call_id}$"))
    assert browser_errors == []
