"""The callback specialist's worklist (/callbacks) and the paged campaign lists, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import AuditLog, CallbackTask, Campaign, CampaignMember, DoNotCall
from callcenter.services import campaigns
from tests.campaigns.conftest import Clock, staff_agent
from tests.campaigns.conftest import signed_in as signed_in_as
from tests.web.factories import Account
from web import campaigns as campaign_views


def signed_in(app: Flask, db: Database, clock: Clock, name: str, *roles: str) -> tuple[FlaskClient, Account]:
    return signed_in_as(app, db, clock, name, *roles, locale="zh")


def listed(page: str) -> list[int]:
    """The task ids of the worklist, in its order."""
    return [int(value) for value in re.findall(r'<tr data-task-id="(\d+)"', page)]


def owed(
    db: Database, clock: Clock, key: str, kind: str, *, hours: float, number: str = "13800138000"
) -> int:
    """An owed callback (nobody owns it), due ``hours`` from now (negative: overdue)."""
    with db.transaction() as session:
        task = campaigns.schedule_callback(
            session, key=key, kind=kind, number="13800138000", now=clock(), region="CN", ordinary_hours=0
        )
        task.due_at = clock() + timedelta(hours=hours)
        return task.id


def campaign_task(db: Database, clock: Clock, agent_id: int, number: str) -> int:
    with db.transaction() as session:
        campaign = session.execute(select(Campaign)).scalars().first()
        if campaign is None:
            campaign = Campaign(
                name="VIP 回访", kind="key_account", mode="preview", status="active",
                timezone="Asia/Shanghai", due_from=clock(), created_at=clock(), updated_at=clock(),
            )  # fmt: skip
            session.add(campaign)
            session.flush()
        task = campaigns.schedule_callback(
            session, key=f"c:{number}", kind="key_account", number=number, now=clock(), region="CN",
            ordinary_hours=2,
        )  # fmt: skip
        session.add(CampaignMember(task_id=task.id, campaign_id=campaign.id, agent_id=agent_id))
        return task.id


def test_the_worklist_holds_what_the_user_may_open(app: Flask, db: Database, clock: Clock) -> None:
    client, account = signed_in(app, db, clock, "chen", "callback_specialist")
    with db.transaction() as session:
        mine = staff_agent(session, clock(), "陈静", user_id=account.id).id
        theirs = staff_agent(session, clock(), "别人").id
    missed = owed(db, clock, "m", "missed_call", hours=-1)  # overdue
    promised = owed(db, clock, "p", "promised_reply", hours=3)
    complaint = owed(db, clock, "c", "complaint", hours=1)
    done = owed(db, clock, "d", "after_hours", hours=-5)
    with db.transaction() as session:
        finished = session.get(CallbackTask, done)
        assert finished is not None
        finished.status, finished.data = "done", {"last_result": "reached"}
    own = campaign_task(db, clock, mine, "13900139001")
    other = campaign_task(db, clock, theirs, "13900139002")

    page = client.get("/callbacks").get_data(as_text=True)
    # Open ones first by due time, then the finished; another specialist's campaign task is not there.
    assert listed(page) == [missed, complaint, own, promised, done]
    assert other not in listed(page)
    row = page.split(f'<tr data-task-id="{missed}"', 1)[1].split("</tr>", 1)[0]
    assert 'class="overdue"' in row and "已超期" in row and "未接来电" in row and "待处理" in row
    assert f'href="/callbacks/{missed}"' in row
    assert "138****8000" in row and "13800138000" not in page  # masked for the specialist
    own_row = page.split(f'<tr data-task-id="{own}"', 1)[1].split("</tr>", 1)[0]
    assert "VIP 回访" in own_row and "overdue" not in own_row
    done_row = page.split(f'<tr data-task-id="{done}"', 1)[1].split("</tr>", 1)[0]
    assert "已完成" in done_row and "已接通" in done_row and "overdue" not in done_row
    for task_id in listed(page):  # every task listed opens for them
        assert client.get(f"/callbacks/{task_id}").status_code == 200
    assert client.get(f"/callbacks/{other}").status_code == 403

    # Filters: status and kind.
    assert listed(client.get("/callbacks?status=done").get_data(as_text=True)) == [done]
    assert done not in listed(client.get("/callbacks?status=open").get_data(as_text=True))
    assert listed(client.get("/callbacks?kind=complaint").get_data(as_text=True)) == [complaint]

    # Leaders see every task, numbers in full.
    leader, _ = signed_in(app, db, clock, "lead", "team_leader")
    everything = leader.get("/callbacks").get_data(as_text=True)
    assert set(listed(everything)) == {missed, promised, complaint, done, own, other}
    assert "+8613800138000" in everything


def test_the_worklist_is_the_specialists_desk_and_pages(
    app: Flask, db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = signed_in(app, db, clock, "chen", "callback_specialist")
    assert client.get("/").headers["Location"] == "/callbacks"
    agent, _ = signed_in(app, db, clock, "agent", "agent_consultation")
    assert agent.get("/callbacks").status_code == 403
    monkeypatch.setattr(campaign_views, "WORKLIST_PAGE", 2)
    ids = [owed(db, clock, f"k{n}", "missed_call", hours=n) for n in range(5)]
    first = client.get("/callbacks?kind=missed_call").get_data(as_text=True)
    assert listed(first) == ids[:2] and "共 5 条" in first
    assert "kind=missed_call" in first.split('rel="next"', 1)[0].rsplit("<a", 1)[1]  # the filter is kept
    last = client.get("/callbacks?kind=missed_call&page=3").get_data(as_text=True)
    assert listed(last) == ids[4:]


def test_campaign_lists_page_with_their_totals(
    app: Flask, db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CAMPAIGN_PAGE", "MEMBER_PAGE", "AUDIT_PAGE", "DNC_PAGE"):
        monkeypatch.setattr(campaign_views, name, 2)
    client, _ = signed_in(app, db, clock, "boss", "supervisor")
    with db.transaction() as session:
        agent = staff_agent(session, clock(), "回访员")
    tasks = [campaign_task(db, clock, agent.id, f"1390013900{n}") for n in range(3)]
    with db.transaction() as session:
        for n in range(2):
            session.add(
                Campaign(
                    name=f"活动{n}", kind="survey", mode="survey", timezone="Asia/Shanghai",
                    due_from=clock(), created_at=clock(), updated_at=clock(),
                )
            )  # fmt: skip
        for n in range(3):
            session.add(DoNotCall(e164=f"+861380013801{n}", reason="客户要求", added_at=clock()))
            session.add(
                AuditLog(
                    at=clock(), action="dialler.skip", object_type="callback_task", object_id=str(tasks[n]),
                    reason="outside_window", data={},
                )
            )  # fmt: skip
        campaign_id = session.execute(select(Campaign.id).where(Campaign.name == "VIP 回访")).scalar_one()

    index = client.get("/campaigns").get_data(as_text=True)
    assert "共 3 条" in index and index.count("<tr data-campaign-id=") == 2 and "活动1" in index
    assert "按键满意度调查" in index and ">survey<" not in index  # modes and kinds by name
    assert "VIP 回访" in client.get("/campaigns?page=2").get_data(as_text=True)
    members = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert (
        "共 3 条" in members
        and [int(v) for v in re.findall(r'<tr data-task-id="(\d+)"', members)] == tasks[:2]
    )
    audit = client.get("/campaigns/audit").get_data(as_text=True)
    assert "共 3 条" in audit and audit.count("outside_window") == 2
    dnc = client.get("/campaigns/dnc").get_data(as_text=True)
    assert "共 3 条" in dnc and dnc.count('<td class="number">') == 2
    assert client.get("/campaigns/dnc?page=2").get_data(as_text=True).count('<td class="number">') == 1
