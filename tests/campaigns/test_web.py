"""The campaign pages and the callback screen through the real Flask app, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

from flask import Flask
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import (
    CallbackResult,
    CallbackTask,
    Caller,
    Campaign,
    Case,
    CaseEvent,
    DoNotCall,
)
from callcenter.services import campaigns
from tests.campaigns.conftest import Clock, add_attempt, signed_in, staff_agent
from tests.web.factories import Account, csrf_token


def seed(db: Database, clock: Clock, supervisor: Account) -> tuple[int, int]:
    with db.transaction() as session:
        for index, (name, tier) in enumerate([("张三", "vip"), ("李四", "key"), ("王五", "normal")]):
            session.add(
                Caller(
                    e164=f"+86138001380{index:02d}",
                    name=name,
                    tier=tier,
                    created_at=clock(),
                    updated_at=clock(),
                )
            )
        agent = staff_agent(session, clock(), "回访员甲", skill_level="senior")
        return agent.id, session.execute(select(Caller.id).where(Caller.name == "张三")).scalar_one()


def test_roles_guard_the_pages(app: Flask, db: Database, clock: Clock) -> None:
    agent, _ = signed_in(app, db, clock, "plainagent", "agent_consultation")
    for path in ("/campaigns", "/campaigns/new", "/campaigns/audit", "/campaigns/dnc", "/callbacks/1"):
        assert agent.get(path).status_code == 403, path
    specialist, _ = signed_in(app, db, clock, "specialist", "callback_specialist")
    assert specialist.get("/campaigns").status_code == 200
    assert specialist.get("/campaigns/new").status_code == 403
    assert specialist.get("/campaigns/audit").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get("/campaigns").status_code == 302


def test_create_from_a_filter_start_and_see_progress(app: Flask, db: Database, clock: Clock) -> None:
    client, account = signed_in(app, db, clock, "boss", "supervisor")
    agent_id, _ = seed(db, clock, account)
    form = {
        "csrf_token": csrf_token(client, "/campaigns/new"),
        "name": "VIP 回访",
        "kind": "key_account",
        "mode": "preview",
        "tiers": ["vip", "key"],
        "agents": [str(agent_id)],
        "calls_per_minute": "10",
        "max_concurrent": "2",
        "max_attempts": "3",
        "timezone": "Asia/Shanghai",
    }
    response = client.post("/campaigns/new", data=form)
    assert response.status_code == 302
    with db.read() as session:
        campaign = session.execute(select(Campaign)).scalar_one()
        assert campaigns.progress(session, campaign.id).total == 2
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "138****8000" in page and "+8613800138000" not in page  # masked in lists
    assert 'class="campaign-progress' in page and "style=" not in page  # CSP: no inline style
    assert "campaigns.js" in page and "<script>" not in page
    client.post(
        f"/campaigns/{campaign.id}/status",
        data={"csrf_token": csrf_token(client, f"/campaigns/{campaign.id}"), "status": "active"},
    )
    progress = client.get(f"/campaigns/{campaign.id}/progress.json").get_json()
    assert progress["total"] == 2 and progress["percent"] == 0 and progress["status"] == "active"


def test_upload_reports_bad_rows(app: Flask, db: Database, clock: Clock) -> None:
    client, account = signed_in(app, db, clock, "boss", "supervisor")
    seed(db, clock, account)
    csv_text = "number,name\n13800138000,甲\nnot-a-number,乙\n+442079460000,丙\n13800138000,重复\n"
    data = {
        "csrf_token": csrf_token(client, "/campaigns/new"),
        "name": "满意度调查",
        "kind": "survey",
        "mode": "survey",
        "timezone": "Asia/Shanghai",
        "upload": (io.BytesIO(csv_text.encode()), "list.csv"),
    }
    page = client.post("/campaigns/new", data=data, content_type="multipart/form-data").get_data(as_text=True)
    assert "not a valid phone number" in page and "duplicate of an earlier row" in page
    assert "<td>3</td>" in page and "<td>5</td>" in page  # the file's line numbers
    with db.read() as session:
        numbers = session.execute(select(CallbackTask.number_e164).order_by(CallbackTask.id)).scalars().all()
    assert sorted(numbers) == ["+442079460000", "+8613800138000"]


def test_script_updates_caller_case_and_report(app: Flask, db: Database, clock: Clock) -> None:
    client, account = signed_in(app, db, clock, "boss", "supervisor", "callback_specialist")
    agent_id, caller_id = seed(db, clock, account)
    with db.transaction() as session:
        spec = campaigns.CampaignSpec(
            "维修回访", "repair_order", "preview", "Asia/Shanghai", clock(), agent_ids=(agent_id,)
        )
        caller = session.get(Caller, caller_id)
        assert caller is not None
        others = list(session.execute(select(Caller).where(Caller.id != caller_id)).scalars())
        campaign = campaigns.create_campaign(session, spec, clock(), callers=[caller, *others])
        case = Case(
            number="TS-20261123-0001",
            case_type="complaint",
            status="customer_replied",
            registered_at=clock(),
            first_reply_due_at=clock(),
            resolution_due_at=clock(),
            updated_at=clock(),
        )
        session.add(case)
        session.flush()
        tasks = list(session.execute(select(CallbackTask).order_by(CallbackTask.number_e164)).scalars())
        tasks[0].data = {**tasks[0].data, "case_id": case.id}
        add_attempt(session, tasks[0], clock(), "reached")  # the first one answered a dial
        first, second = tasks[0].id, tasks[1].id
        campaign_id, case_id = campaign.id, case.id
    screen = client.get(f"/callbacks/{first}").get_data(as_text=True)
    assert (
        "客户您好,请问是您本人吗?" in screen and "+8613800138000" in screen
    )  # handling context: full number
    assert 'name="attitude"' in screen  # the repair-order questions
    client.post(f"/callbacks/{first}/dial", data={"csrf_token": csrf_token(client, f"/callbacks/{first}")})
    answers = {
        "csrf_token": csrf_token(client, f"/callbacks/{first}"),
        "identity": "yes",
        "problem": "门打不开",
        "solution": "上门维修",
        "satisfied": "no",
        "satisfaction": "2",
        "suggestion": "希望更快上门",
        "attitude": "4",
        "quality": "3",
        "charges": "yes",
        "duration_s": "420",
    }
    assert client.post(f"/callbacks/{first}", data=answers).status_code == 302
    stop = {
        "csrf_token": csrf_token(client, f"/callbacks/{second}"),
        "identity": "no",
        "problem": "不应保存",
        "other_phone": "1",  # never dialled: called from another phone, with a reason
        "other_phone_reason": "线路故障,用手机拨打",
    }
    client.post(f"/callbacks/{second}", data=stop)
    again = client.post(f"/callbacks/{first}", data=answers)
    assert again.status_code == 302  # refused: recorded once
    with db.read() as session:
        results = {row.task_id: row for row in session.execute(select(CallbackResult)).scalars()}
        assert results[first].satisfaction == 2 and results[first].attitude == 4
        assert results[first].charges_reasonable is True
        assert results[second].outcome == "not_the_customer" and results[second].problem == ""
        caller = session.get(Caller, caller_id)
        assert caller is not None and "dissatisfied, 2/5; 希望更快上门" in caller.notes
        events = session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)).scalars().all()
        # The complaint was waiting for its callback: the cases service records it and moves it on.
        recorded = [event for event in events if event.kind == "callback_recorded"]
        assert [event.data for event in recorded] == [{"outcome": "reached: 希望更快上门", "satisfaction": 2}]
        case = session.get(Case, case_id)
        assert case is not None and (case.status, case.satisfaction) == ("callback_done", 2)
        assert case.follow_up == "dissatisfied_with_result"  # 2 is below the dissatisfied threshold
    report = client.get(f"/campaigns/{campaign_id}/report").get_data(as_text=True)
    assert '<td data-score="2">1</td>' in report
    assert "希望更快上门" in report and "138****8000" in report
    assert "7:00" in report  # the 420 s call is over 5 min: flagged
    assert '<td data-result="not_the_customer">1</td>' in report


def test_dnc_list_and_audit_page(app: Flask, db: Database, clock: Clock) -> None:
    client, _ = signed_in(app, db, clock, "boss", "supervisor")
    token = csrf_token(client, "/campaigns/dnc")
    client.post("/campaigns/dnc", data={"csrf_token": token, "number": "13800138000", "reason": "客户要求"})
    with db.read() as session:
        assert session.execute(select(DoNotCall.e164)).scalars().all() == ["+8613800138000"]
    page = client.get("/campaigns/dnc").get_data(as_text=True)
    assert "138****8000" in page
    assert client.get("/campaigns/audit").status_code == 200
    refused = client.post("/campaigns/dnc", data={"number": "13800138001"})
    assert refused.status_code == 400  # no CSRF token
