"""The console's pages and forms through the Flask test client: presence at sign-in, wrap-up,
transfers to the fake AMI and the fake Twilio API, unlogged calls, the shift view and handover."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Agent, Call, CallbackTask, PresenceLog, ShiftHandover
from callcenter.settings import Department, Settings
from callcenter.voice.ami.pause import member_interface
from tests.conftest import FIXED_NOW
from tests.console.factories import agent_account, answered_call, open_case
from tests.loopback import serving
from tests.twilio.conftest import ACCOUNT, TOKEN, FakeTwilio, _handler
from tests.voice.ami.fakeami import FakeAmi
from tests.web.factories import csrf_token, login, make_account, web_settings_for
from web import create_app

JSON = {"Accept": "application/json"}


def _app(settings: Settings, db: Database) -> Flask:
    app = create_app(settings, db, clock=lambda: FIXED_NOW)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def fake_ami() -> Iterator[FakeAmi]:
    server = FakeAmi(secret="s3cret").start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serving(_handler(fake), "fake-twilio") as fake.base_url:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, db: Database, fake_ami: FakeAmi, fake_twilio: FakeTwilio) -> Settings:
    departments = [
        {
            "code": "after_sales",
            "name_zh": "售后服务部",
            "name_en": "After-sales",
            "asterisk_exten": "801",
            "twilio_number": "+861088880801",
        },
        {"code": "tech_rd", "name_zh": "技术研发部", "name_en": "Technical R&D", "asterisk_exten": "802"},
    ]
    settings = web_settings_for(
        tmp_path,
        db.url,
        ami={"host": "127.0.0.1", "port": fake_ami.port, "secret": "s3cret", "connect_timeout_s": 2},
        twilio={
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "api_base_url": fake_twilio.base_url,
            "caller_id": "+864008123123",
        },
    )
    return settings.model_copy(update={"departments": tuple(Department(**row) for row in departments)})


@pytest.fixture
def client(settings: Settings, db: Database) -> FlaskClient:
    return _app(settings, db).test_client()


def _post(client: FlaskClient, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, "/console"), **data}, headers=JSON)


def test_signing_in_and_out_is_the_agents_presence(client: FlaskClient, db: Database) -> None:
    account, _ = agent_account(db, FIXED_NOW)
    login(client, account)
    page = client.get("/console").get_data(as_text=True)
    assert (
        'data-status="available"' in page and 'id="late-flag"' in page
    )  # 10:00, the early shift began at 06:00
    assert "console.js" in page and "<script>" not in page
    assert _post(client, "/console/presence", {"status": "break"}).json["status"] == "break"
    assert _post(client, "/console/presence", {"status": "wrap_up"}).status_code == 400
    client.post("/logout", data={"csrf_token": csrf_token(client, "/console")})
    with db.read() as session:
        log = session.execute(
            select(PresenceLog.status, PresenceLog.login, PresenceLog.late).order_by(PresenceLog.id)
        ).all()
    assert [tuple(row) for row in log] == [
        ("available", True, True),
        ("break", False, False),
        ("offline", False, False),
    ]


def test_wrap_up_through_the_console(client: FlaskClient, db: Database) -> None:
    account, _ = agent_account(db, FIXED_NOW)
    call_id = answered_call(db, FIXED_NOW, linkedid="5.1", start=FIXED_NOW - timedelta(minutes=3))
    login(client, account)
    missing = _post(client, "/console/wrapup", {"call_id": call_id, "category": "consultation", "note": ""})
    assert missing.status_code == 400 and not missing.json["ok"]
    done = _post(
        client, "/console/wrapup", {"call_id": call_id, "category": "consultation", "note": "已告知保修政策"}
    )
    assert done.status_code == 200 and done.json["status"] == "available"
    with db.read() as session:
        call = session.get(Call, call_id)
        assert (
            call is not None and call.wrapup_note == "已告知保修政策" and call.wrapped_up_by_id == account.id
        )


def test_unlogged_calls_own_for_agents_all_for_team_leaders(client: FlaskClient, db: Database) -> None:
    account, _ = agent_account(db, FIXED_NOW)
    agent_account(db, FIXED_NOW, "wang", extension="1002", name="王芳")
    answered_call(db, FIXED_NOW, linkedid="6.1", start=FIXED_NOW - timedelta(hours=1), caller_name="自己的")
    answered_call(
        db,
        FIXED_NOW,
        linkedid="6.2",
        start=FIXED_NOW - timedelta(hours=1),
        extension="1002",
        from_raw="13912345678",
        caller_name="别人的",
    )
    login(client, account)
    mine = client.get("/console/unlogged").get_data(as_text=True)
    assert "自己的" in mine and "别人的" not in mine and "13800138000" in mine
    leader = make_account(db, FIXED_NOW, "leader", ("team_leader",))
    client.post("/logout", data={"csrf_token": csrf_token(client, "/console")})
    login(client, leader)
    everyone = client.get("/console/unlogged").get_data(as_text=True)
    assert "自己的" in everyone and "别人的" in everyone and "+8613912345678" in everyone


def test_blind_transfer_on_asterisk_is_a_redirect_logged_once(
    client: FlaskClient, db: Database, fake_ami: FakeAmi
) -> None:
    account, _ = agent_account(db, FIXED_NOW)
    call_id = answered_call(
        db, FIXED_NOW, linkedid="7.1", start=FIXED_NOW - timedelta(minutes=2), ended=False
    )
    fake_ami.live_channels.add("PJSIP/trunk-7.1")
    login(client, account)
    form = {"call_id": call_id, "department": "after_sales", "token": "tok-12345678"}
    first = _post(client, "/console/transfer", form)
    assert first.status_code == 200, first.json
    again = _post(client, "/console/transfer", form)  # the same request again (a double click, a retry)
    assert again.status_code == 200
    redirects = [a for a in fake_ami.actions if a.get("Action") == "Redirect"]
    assert len(redirects) == 1
    assert {k: redirects[0][k] for k in ("Channel", "Context", "Exten", "Priority")} == {
        "Channel": "PJSIP/trunk-7.1",
        "Context": "callcenter-departments",
        "Exten": "801",
        "Priority": "1",
    }
    with db.read() as session:
        call = session.get(Call, call_id)
        assert call is not None and len(call.transfers) == 1
        assert (
            call.transfers[0]["department"] == "after_sales"
            and call.transfers[0]["target"] == "callcenter-departments,801,1"
        )
        assert call.transfers[0]["at"] == FIXED_NOW.isoformat()


def test_a_transfer_asterisk_refuses_is_not_logged(
    client: FlaskClient, db: Database, fake_ami: FakeAmi
) -> None:
    account, _ = agent_account(db, FIXED_NOW)
    call_id = answered_call(
        db, FIXED_NOW, linkedid="7.2", start=FIXED_NOW - timedelta(minutes=2), ended=False
    )
    login(client, account)  # the caller's channel is gone: Asterisk answers "Channel does not exist"
    response = _post(
        client, "/console/transfer", {"call_id": call_id, "department": "tech_rd", "token": "tok-abcdefgh"}
    )
    assert response.status_code == 502 and "Channel does not exist" in response.json["message"]
    ended = answered_call(db, FIXED_NOW, linkedid="7.3", start=FIXED_NOW - timedelta(minutes=9))
    assert _post(client, "/console/transfer", {"call_id": ended, "department": "tech_rd"}).status_code == 409
    with db.read() as session:
        assert all(not call.transfers for call in session.execute(select(Call)).scalars())


def test_transfer_on_twilio_updates_the_live_call(
    client: FlaskClient, db: Database, fake_twilio: FakeTwilio
) -> None:
    account, _ = agent_account(db, FIXED_NOW, twilio_identity="lina", extension=None)
    sid = "CA" + "7" * 32
    call_id = answered_call(
        db,
        FIXED_NOW,
        linkedid=sid,
        start=FIXED_NOW - timedelta(minutes=2),
        ended=False,
        channel="twilio",
        extension="x",
    )
    with db.transaction() as session:  # on Twilio the agent is named by identity
        call = session.get(Call, call_id)
        assert call is not None
        call.agent_id = session.execute(select(Agent.id).where(Agent.twilio_identity == "lina")).scalar_one()
    login(client, account)
    no_number = _post(client, "/console/transfer", {"call_id": call_id, "department": "tech_rd"})
    assert no_number.status_code == 409
    response = _post(
        client, "/console/transfer", {"call_id": call_id, "department": "after_sales", "token": "tw-12345678"}
    )
    assert response.status_code == 200, response.json
    updates = [r for r in fake_twilio.requests if r[0] == "POST" and r[1].endswith(f"/Calls/{sid}.json")]
    assert len(updates) == 1
    assert updates[0][2]["Twiml"] == [
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Dial callerId="+864008123123" timeout="30">+861088880801</Dial></Response>'
    ]
    fake_twilio.ended_calls.add(sid)
    failed = _post(
        client, "/console/transfer", {"call_id": call_id, "department": "after_sales", "token": "tw-87654321"}
    )
    assert failed.status_code == 502
    with db.read() as session:
        call = session.get(Call, call_id)
        assert call is not None and [t["target"] for t in call.transfers] == ["+861088880801"]


def test_only_consultation_agents_and_leads_transfer(client: FlaskClient, db: Database) -> None:
    account, _ = agent_account(db, FIXED_NOW, roles=("agent_complaint",))
    login(client, account)
    assert _post(client, "/console/transfer", {"call_id": 1, "department": "after_sales"}).status_code == 403


def test_shift_view_and_the_handover_the_next_shift_sees(client: FlaskClient, db: Database) -> None:
    leader = make_account(db, FIXED_NOW, "leader", ("team_leader",))
    receiver, _ = agent_account(db, FIXED_NOW, "next", roles=("agent_consultation",))
    open_case(db, FIXED_NOW, caller_id=None, number="TS-20261122-0007", title="空调不制冷")
    open_case(db, FIXED_NOW, caller_id=None, number="TS-20261122-0008", status="closed")
    with db.transaction() as session:
        session.add(
            CallbackTask(
                key="t1",
                kind="promised_reply",
                status="pending",
                due_at=FIXED_NOW + timedelta(hours=1),
                note="回复维修时间",
                created_at=FIXED_NOW,
                updated_at=FIXED_NOW,
            )
        )
        session.add(
            CallbackTask(
                key="t2",
                kind="survey",
                status="done",
                due_at=FIXED_NOW,
                created_at=FIXED_NOW,
                updated_at=FIXED_NOW,
            )
        )
    login(client, leader)
    page = client.get("/console/shift").get_data(as_text=True)
    assert "TS-20261122-0007" in page and "TS-20261122-0008" not in page and "回复维修时间" in page
    assert "早班" in page
    token = csrf_token(client, "/console/shift")
    response = client.post(
        "/console/handover", data={"csrf_token": token, "receiving_id": receiver.id, "note": "注意 0007 催单"}
    )
    assert response.status_code == 302
    with db.read() as session:
        handover = session.execute(select(ShiftHandover)).scalar_one()
        assert (handover.shift_code, handover.pending_count, handover.on_duty_id) == ("early", 2, leader.id)
        assert [item["ref"] for item in handover.items] == [
            "TS-20261122-0007",
            f"CB-{1}",
        ] or handover.pending_count == 2
    client.post("/logout", data={"csrf_token": csrf_token(client, "/console/shift")})
    login(client, receiver)
    console = client.get("/console").get_data(as_text=True)
    assert "注意 0007 催单" in console and "空调不制冷" in console
    ack = client.post(
        f"/console/handover/{handover.id}/ack", data={"csrf_token": csrf_token(client, "/console")}
    )
    assert ack.status_code == 302
    with db.read() as session:
        assert session.execute(select(ShiftHandover.acknowledged_at)).scalar_one() == FIXED_NOW


def test_agents_cannot_see_the_shift_view(client: FlaskClient, db: Database) -> None:
    account, _ = agent_account(db, FIXED_NOW)
    login(client, account)
    assert client.get("/console/shift").status_code == 403
    assert (
        client.post("/console/handover", data={"csrf_token": csrf_token(client, "/console")}).status_code
        == 403
    )


def _pauses(fake_ami: FakeAmi, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 5
    while True:
        found = [a for a in list(fake_ami.actions) if a.get("Action") == "QueuePause"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_presence_pauses_and_unpauses_the_queue_member(
    client: FlaskClient, db: Database, fake_ami: FakeAmi
) -> None:
    account, _ = agent_account(db, FIXED_NOW)  # extension 1001: member PJSIP/1001
    login(client, account)
    signed_on = _pauses(fake_ami, 1)
    assert [(a["Interface"], a["Paused"]) for a in signed_on] == [("PJSIP/1001", "false")]
    _post(client, "/console/presence", {"status": "break"})
    on_break = _pauses(fake_ami, 2)[1]
    assert (on_break["Interface"], on_break["Paused"], on_break["Reason"]) == ("PJSIP/1001", "true", "break")


def test_member_interface() -> None:
    assert member_interface("PJSIP/1001", "PJSIP/{extension}") == "PJSIP/1001"
    assert member_interface("1001", "SIP/{extension}") == "SIP/1001"
