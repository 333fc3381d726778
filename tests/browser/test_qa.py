"""QA in a real browser: an evaluator plays a sampled recording (a real WAV) in the workspace and
scores it; the agent acknowledges; another evaluator cannot open it; the audit shows the playback."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from callcenter.db import Database
from tests.browser.conftest import ARTIFACTS
from tests.qa.conftest import build_scene
from tests.web.factories import PASSWORD, web_settings_for


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_be_visible()


def sign_out(page: Page) -> None:
    page.click("form.logout button")
    expect(page.locator("#username")).to_be_visible()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"qa_{name}.png", full_page=True)


@pytest.mark.browser
def test_qa_scores_a_played_recording_and_the_agent_acknowledges(
    page: Page, live_server: str, db: Database, now: datetime, tmp_path: Path, browser_errors: list[str]
) -> None:
    scene = build_scene(db, web_settings_for(tmp_path, db.url), now)

    sign_in(page, live_server, "qa1")
    page.goto(f"{live_server}/qa/")
    page.locator(f"tr[data-sample-id='{scene.sample_id}'] a").click()
    expect(page).to_have_url(f"{live_server}/qa/samples/{scene.sample_id}")
    expect(page.locator("dd.number")).to_contain_text("138****8000")
    expect(page.locator(".formula").first).to_contain_text("Σ")

    # The player loads nothing until play is pressed (preload="none"): no listening is audited yet.
    assert page.evaluate("document.getElementById('qa-audio').readyState") == 0
    # Then it loads the WAV by Range requests, plays, seeks and changes speed.
    played = page.evaluate(
        "(() => { const a = document.getElementById('qa-audio'); a.muted = true;"
        " return a.play().then(() => 'playing'); })()"
    )
    assert played == "playing"
    duration = page.evaluate("document.getElementById('qa-audio').duration")
    assert 3.9 < duration < 4.1
    page.wait_for_function("() => document.getElementById('qa-audio').currentTime > 0.3")
    page.select_option("#qa-speed", "1.5")
    assert page.evaluate("document.getElementById('qa-audio').playbackRate") == 1.5
    page.evaluate("document.getElementById('qa-audio').pause()")
    page.click(".qa-skip[data-skip='5']")  # to the end: clamped to the duration
    page.evaluate("document.getElementById('qa-audio').currentTime = 1.0")
    page.wait_for_function("() => Math.abs(document.getElementById('qa-audio').currentTime - 1.0) < 0.05")
    shot(page, "workspace")

    page.select_option("#item-politeness", "8")
    page.select_option("#item-mandarin", "fail")
    page.fill("#comments", "结束语不完整")
    page.fill("#suggestions", "按标准话术结束通话")
    page.check("#case_material")
    page.click("form.qa-form button[type=submit]")
    evaluation = page.locator("article.qa-evaluation.current")
    expect(evaluation.locator(".qa-total")).to_have_text("97.69")  # 30·(52 − 2 − 2)/52 + 30 + 40
    expect(evaluation).to_contain_text("按标准话术结束通话")
    shot(page, "scored")
    sign_out(page)

    sign_in(page, live_server, "zhangwei")
    page.goto(f"{live_server}/qa/mine")
    card = page.locator("section.qa-mine")
    expect(card.locator(".qa-total")).to_have_text("97.69")
    card.locator("button.qa-ack").click()
    expect(page.locator("section.qa-mine .qa-acknowledged")).to_be_visible()
    shot(page, "acknowledged")
    sign_out(page)

    sign_in(page, live_server, "qa2")
    response = page.goto(f"{live_server}/qa/samples/{scene.sample_id}")
    assert response is not None and response.status == 403
    audio = page.request.get(f"{live_server}/qa/recordings/{scene.recording_id}/audio")
    assert audio.status == 403
    sign_out(page)

    sign_in(page, live_server, "boss")
    page.goto(f"{live_server}/qa/audit")
    rows = page.locator("table.qa-audit tbody tr")
    expect(rows.filter(has_text="qa1").filter(has_text="recording.play")).to_have_count(1)
    expect(rows.filter(has_text="qa2")).to_have_count(0)
    shot(page, "audit")
    # the only console errors are the refusals qa2 was meant to get
    assert [e for e in browser_errors if "status of 403" not in e] == []
