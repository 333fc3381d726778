"""The agent console in Chromium: an agent signs in, a simulated call (FastAGI, then the queue ringing
the agent as `simulate-call --agent` does, through the database outbox) pops the caller card within a
second, a caller name with markup is shown as text, the agent creates a complaint case from the card
and wraps up."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import select
from werkzeug.serving import make_server

from callcenter.db import Database
from callcenter.events import SCREEN_POP, Event, LocalBus, OutboxBus
from callcenter.models import Call, Case
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import FastAGIServer, RunningServer
from callcenter.voice.agi.simulate import CallScript, simulate_call
from callcenter.voice.ami.ringing import Ring, ring_agent
from tests.browser.conftest import ARTIFACTS
from tests.conftest import FIXED_NOW
from tests.console.factories import agent_account, answered_call, open_case
from tests.web.factories import web_settings_for
from web import create_app
from web.console import ConsoleRuntime

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def console_server(tmp_path: Path, db: Database) -> Iterator[tuple[str, ConsoleRuntime]]:
    app = create_app(web_settings_for(tmp_path, db.url), db, bus=LocalBus())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    runtime = app.extensions["console"]
    try:
        yield f"http://127.0.0.1:{server.server_port}", runtime
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        runtime.stop()


@pytest.fixture
def fastagi(tmp_path: Path, db: Database) -> Iterator[FastAGIServer]:
    # A fixed instant in hotline hours: the IVR routes to the queue whatever the time of the run.
    server = build_server(web_settings_for(tmp_path, db.url), db, lambda: FIXED_NOW, port=0)
    with RunningServer(server):
        yield server


def _ring(db: Database, linkedid: str, name: str) -> threading.Thread:
    """The queue rings agent 1001 and it answers a second later (in the background)."""
    ring = Ring(linkedid, "1001", "consultation", "+8613800138000", name)
    bus = OutboxBus(db, utc_now)
    thread = threading.Thread(
        target=ring_agent,
        args=(ring, db, bus, utc_now),
        kwargs={"region": "CN", "monitor_dir": "/m", "answer_after_s": 1.0},
        daemon=True,
    )
    thread.start()
    return thread


@pytest.mark.browser
def test_a_simulated_call_pops_the_card_the_agent_opens_a_case_and_wraps_up(
    page: Page,
    console_server: tuple[str, ConsoleRuntime],
    fastagi: FastAGIServer,
    db: Database,
    browser_errors: list[str],
) -> None:
    url, runtime = console_server
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    account, _ = agent_account(db, utc_now(), "lina", name="李娜")
    page.goto(f"{url}/login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("button[type=submit]")
    page.goto(f"{url}/console")
    expect(page.locator("#presence-status")).to_have_attribute("data-status", "available")
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "open")
    assert runtime.wait_ready(5)

    result = simulate_call("127.0.0.1", fastagi.port, CallScript(inputs=["1"], caller_name=EVIL))
    assert fastagi.fallback.recorder.flush()
    published = time.time()
    ringer = _ring(db, result.linkedid, EVIL)
    card = page.locator("#card")
    expect(card).to_be_visible(timeout=1000)
    latency_ms = float(card.get_attribute("data-received-at") or 0) - published * 1000
    print(f"screen-pop: ring published -> card on screen in {latency_ms:.0f} ms")
    assert 0 < latency_ms < 1000
    page.screenshot(path=str(ARTIFACTS / "console_card_ringing.png"), full_page=True)

    expect(page.locator("#card-name")).to_have_text(EVIL)  # as text: no markup ran or was parsed
    assert page.locator("#card script, #card img").count() == 0 and not dialogs
    expect(page.locator("#card-vip")).to_be_hidden()  # a first-time, normal-tier caller
    expect(page.locator("#card-frequent")).to_be_hidden()
    expect(page.locator("#card-state")).to_have_attribute("data-state", "connected", timeout=3000)
    ringer.join(timeout=5)
    expect(page.locator("#card-region")).to_have_text("北京市")
    expect(page.locator("#card-queue")).to_have_text("consultation")
    expect(page.locator("#card-script")).to_contain_text("我是李娜")
    expect(page.locator("#card-ivr")).to_contain_text("主菜单")  # main_menu, by its display name
    call_id = card.get_attribute("data-call-id")
    expect(page.locator("#card-case-link")).to_have_attribute("href", f"/cases/new?call_id={call_id}")
    expect(page.locator("#presence-status")).to_have_attribute("data-status", "on_call")

    # The agent opens the prefilled case form from the card (a new tab: the card stays on screen).
    with page.expect_popup() as popup:
        page.click("#card-case-link")
    form = popup.value
    expect(form.locator("#case_type")).to_have_value("consultation")  # the call came through 1
    expect(form.locator("#contact_name")).to_have_value(EVIL)
    form.select_option("#case_type", "complaint")
    form.select_option("#category", "service_attitude")
    form.fill("#title", "维修人员态度差")
    form.fill("#content", "客户投诉上门维修人员态度差,要求回电。")
    form.click("form.case-form button[type=submit]")
    expect(form.locator("h1.case-number")).to_have_text(re.compile(r"^TS-\d{8}-\d{4}$"))
    form.screenshot(path=str(ARTIFACTS / "console_case_from_card.png"), full_page=True)
    with db.read() as session:
        case = session.scalars(select(Case)).one()
        assert case.case_type == "complaint" and [c.id for c in case.calls] == [int(call_id or 0)]
    form.close()

    page.select_option("#wrapup-form select[name=category]", "complaint")
    page.click("#wrapup-form button[type=submit]")  # no note yet: the browser asks for it
    assert page.locator("#console-status").is_hidden()
    page.fill("#wrapup-form textarea[name=note]", "已解答保修问题")
    page.click("#wrapup-form button[type=submit]")
    expect(page.locator("#console-status")).to_contain_text("小结已保存")
    expect(page.locator("#presence-status")).to_have_attribute("data-status", "available")
    with db.read() as session:
        call = session.get(Call, int(call_id or 0))
        assert call is not None and (call.wrapup_category, call.wrapup_note) == (
            "complaint",
            "已解答保修问题",
        )
    assert not browser_errors and not dialogs


@pytest.mark.browser
def test_a_frequent_vip_caller_shows_history_first_and_open_cases(
    page: Page, console_server: tuple[str, ConsoleRuntime], db: Database, browser_errors: list[str]
) -> None:
    url, runtime = console_server
    now = utc_now()
    account, _ = agent_account(db, now, "lina", name="李娜")
    for n in range(3):
        answered_call(db, now, linkedid=f"p.{n}", start=now - timedelta(days=n + 1), caller_name="赵六")
    current = answered_call(
        db, now, linkedid="p.now", start=now - timedelta(seconds=30), caller_name="赵六", ended=False
    )
    with db.transaction() as session:
        call = session.get(Call, current)
        assert call is not None and call.caller is not None
        call.caller.tier, call.caller.name = "vip", "赵六"
        caller_id = call.caller.id
    open_case(db, now, caller_id=caller_id, number="TS-20261120-0003", title="退款未到账")
    page.goto(f"{url}/login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("button[type=submit]")
    page.goto(f"{url}/console")
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "open")
    runtime.context.bus.publish(
        Event(SCREEN_POP, {"agent": "PJSIP/1001", "call_id": current, "state": "ringing"})
    )
    expect(page.locator("#card")).to_be_visible(timeout=1000)
    expect(page.locator("#card-vip")).to_be_visible()
    expect(page.locator("#card-frequent")).to_contain_text("4")
    expect(page.locator("#card-sections > section").first).to_have_id("card-history")
    expect(page.locator("#card-calls li")).to_have_count(3)
    expect(page.locator("#card-case-list")).to_contain_text("TS-20261120-0003")
    expect(page.locator("#card-tier")).to_have_text("VIP")
    assert not browser_errors
