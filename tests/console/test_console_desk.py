"""The console as a desk: wrap-up without a caller card, paged lists, display names, the shift view
without a shift window. Through the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import AgentPresence, Call, CallbackTask
from callcenter.services import presence, wrapup
from tests.conftest import FIXED_NOW
from tests.console.factories import agent_account, answered_call, open_case
from tests.web.factories import csrf_token, login, make_account, web_settings_for
from web import create_app
from web.console import views


@pytest.fixture
def app(tmp_path: Path, db: Database) -> Flask:
    app = create_app(web_settings_for(tmp_path, db.url), db, clock=lambda: FIXED_NOW)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def waiting_ids(page: str) -> list[int]:
    """The calls of the console's wrap-up list, in its order."""
    section = page.split('id="waiting"', 1)[1].split("</section>", 1)[0]
    return [int(value) for value in re.findall(r'<li data-call-id="(\d+)"', section)]


def test_an_agent_without_a_card_wraps_up_from_the_list_and_is_available_again(
    app: Flask, client: FlaskClient, db: Database
) -> None:
    settings = app.extensions["callcenter"].settings
    account, agent_id = agent_account(db, FIXED_NOW)
    _other, other_id = agent_account(db, FIXED_NOW, "wang", extension="1002", name="王芳")
    # Two calls of the agent's (one just ended: in the window; one an hour ago: unlogged), one of another.
    recent = answered_call(db, FIXED_NOW, linkedid="7.1", start=FIXED_NOW - timedelta(minutes=3))
    old = answered_call(db, FIXED_NOW, linkedid="7.2", start=FIXED_NOW - timedelta(hours=1))
    answered_call(db, FIXED_NOW, linkedid="7.3", start=FIXED_NOW - timedelta(minutes=5), extension="1002")
    login(client, account)  # signing in makes the agent available
    with db.transaction() as session:  # the voice process moved them: the call ended, no console open
        call = session.get(Call, recent)
        assert call is not None and call.agent_id == agent_id and other_id != agent_id
        wrapup.call_connected(
            session, agent_id, recent, now=FIXED_NOW, console=settings.console, zone=settings.zone
        )
        wrapup.call_ended(
            session, agent_id, recent, now=FIXED_NOW, console=settings.console, zone=settings.zone
        )
        assert presence.current(session, agent_id).status == "wrap_up"  # type: ignore[union-attr]

    page = client.get("/console", query_string={"lang": "zh"}).get_data(as_text=True)
    assert waiting_ids(page) == [old, recent]  # the agent's own, oldest first
    section = page.split('id="waiting"', 1)[1].split("</section>", 1)[0]
    assert section.count('action="/console/wrapup"') == 2 and "未小结" in section  # the old one is flagged
    assert '<option value="fault_report">障碍申告</option>' in section
    assert ">fault_report<" not in page and ">wrong_number<" not in page  # categories by their names

    form = {"csrf_token": csrf_token(client, "/console"), "call_id": recent, "category": "consultation"}
    done = client.post("/console/wrapup", data={**form, "note": "已告知保修政策"})
    assert done.status_code == 302 and done.headers["Location"] == "/console"
    with db.read() as session:
        state = session.get(AgentPresence, agent_id)
        assert state is not None and state.status == "available"
        assert session.get(Call, recent).wrapup_note == "已告知保修政策"  # type: ignore[union-attr]
    page = client.get("/console").get_data(as_text=True)
    assert waiting_ids(page) == [old]
    # Another agent's call is not theirs to wrap up.
    with db.read() as session:
        theirs = session.execute(select(Call.id).where(Call.agent_id == other_id)).scalar_one()
    refused = client.post("/console/wrapup", data={**form, "call_id": theirs, "note": "x"})
    assert refused.status_code == 302
    with db.read() as session:
        assert session.get(Call, theirs).wrapup_note is None  # type: ignore[union-attr]


def test_the_console_lists_page_with_their_totals(
    client: FlaskClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "WAITING_PAGE", 2)
    monkeypatch.setattr(views, "UNLOGGED_PAGE", 2)
    account, _ = agent_account(db, FIXED_NOW)
    calls = [
        answered_call(db, FIXED_NOW, linkedid=f"8.{n}", start=FIXED_NOW - timedelta(hours=5 - n))
        for n in range(3)
    ]
    login(client, account)
    first = client.get("/console", query_string={"lang": "en"}).get_data(as_text=True)
    assert waiting_ids(first) == calls[:2] and "3 in all" in first and "waiting=2" in first
    second = client.get("/console", query_string={"waiting": 2}).get_data(as_text=True)
    assert waiting_ids(second) == calls[2:]
    unlogged = client.get("/console/unlogged").get_data(as_text=True)
    assert "3 in all" in unlogged and unlogged.count("<tr data-call-id=") == 2
    last = client.get("/console/unlogged", query_string={"page": 2}).get_data(as_text=True)
    assert last.count("<tr data-call-id=") == 1 and f'data-call-id="{calls[2]}"' in last


def test_the_shift_view_names_types_and_statuses(client: FlaskClient, db: Database) -> None:
    leader = make_account(db, FIXED_NOW, "leader", ("team_leader",))
    open_case(db, FIXED_NOW, caller_id=None, number="TS-20261122-0009", status="in_progress")
    with db.transaction() as session:
        session.add(
            CallbackTask(
                key="s1",
                kind="missed_call",
                status="pending",
                due_at=FIXED_NOW,
                created_at=FIXED_NOW,
                updated_at=FIXED_NOW,
            )
        )
    login(client, leader)
    page = client.get("/console/shift", query_string={"lang": "zh"}).get_data(as_text=True)
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert "投诉" in cells and "处理中" in cells and "未接来电" in cells and "待处理" in cells
    for code in ("complaint", "in_progress", "missed_call", "pending"):
        assert code not in cells


def test_without_a_shift_window_the_shift_view_says_so(
    client: FlaskClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presence, "shift_at", lambda *args: None)
    monkeypatch.setattr(presence, "previous_window", lambda *args: None)
    leader = make_account(db, FIXED_NOW, "leader", ("team_leader",))
    login(client, leader)
    page = client.get("/console/shift", query_string={"lang": "zh"})
    assert page.status_code == 200
    assert "当前时间没有配置班次" in page.get_data(as_text=True)
    token = csrf_token(client, "/console/shift")
    handover = client.post("/console/handover", data={"csrf_token": token, "note": "x"})
    assert handover.status_code == 302
    assert "无需交接" in client.get("/console/shift").get_data(as_text=True)
