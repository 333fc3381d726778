"""Callbacks reach their owner: allocation to entitled users only, who may open a task, the leaders'
audited reassignment, "reached" only with an answered dial (or the audited other phone), and the
screen without an outbound channel. Services and pages, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.dialler.channels import configured_channel
from callcenter.models import AuditLog, CallbackResult, CallbackTask, CampaignMember, User
from callcenter.services import callback_results, callback_tasks, campaigns
from tests.campaigns.conftest import Clock, add_attempt, add_tasks, staff_agent
from tests.conftest import make_settings
from tests.web.factories import Account, csrf_token, login, make_account, web_settings_for
from web import create_app
from web.i18n import compile_catalogs

ROLES = ("callback_specialist",)
NUMBERS = ["+8613800138000", "+8613800138001", "+8613800138002", "+8613800138003"]


@pytest.fixture(scope="module", autouse=True)
def _catalogs() -> None:
    compile_catalogs()


@pytest.fixture
def app(tmp_path: Path, db: Database, clock: Clock) -> Flask:
    app = create_app(web_settings_for(tmp_path, db.url), db, clock=clock)  # no Twilio, no AMI host
    app.config["TESTING"] = True
    return app


def signed_in(
    app: Flask, db: Database, clock: Clock, name: str, *roles: str, locale: str | None = "en"
) -> tuple[FlaskClient, Account]:
    account = make_account(db, clock(), name, roles, locale=locale)
    client = app.test_client()
    assert login(client, account).status_code == 302
    return client, account


def campaign_tasks(db: Database, clock: Clock, agent_ids: tuple[int, ...]) -> tuple[int, dict[int, int]]:
    """A preview campaign over NUMBERS; returns its id and each task's owner (agent id)."""
    upload = campaigns.parse_upload("number\n" + "\n".join(NUMBERS), "CN")
    with db.transaction() as session:
        spec = campaigns.CampaignSpec(
            "回访", "after_sale", "preview", "Asia/Shanghai", clock(), agent_ids=agent_ids
        )
        campaign = campaigns.create_campaign(session, spec, clock(), upload=upload)
        members = session.execute(
            select(CampaignMember.task_id, CampaignMember.agent_id).where(
                CampaignMember.campaign_id == campaign.id
            )
        ).tuples()
        return campaign.id, {task_id: agent_id or 0 for task_id, agent_id in members}


# --- allocation ----------------------------------------------------------------------------------


def test_allocation_only_to_users_who_take_callback_tasks(db: Database, clock: Clock) -> None:
    now = clock()
    with db.transaction() as session:
        specialist = staff_agent(session, now, "回访甲").id
        consultant = staff_agent(session, now, "咨询乙", roles=("agent_consultation",)).id
        complaint = staff_agent(session, now, "投诉丙", roles=("agent_complaint",)).id
        gone = staff_agent(session, now, "离职丁")
        user = session.get(User, gone.user_id)
        assert user is not None
        user.active = False
        entitled = [agent.name for agent in callback_tasks.entitled_agents(session, ("callback_specialist",))]
        assert entitled == ["回访甲"]
        upload = campaigns.parse_upload("number\n" + "\n".join(NUMBERS), "CN")
        for refused in (consultant, gone.id):
            spec = campaigns.CampaignSpec(
                "x", "after_sale", "preview", "Asia/Shanghai", now, agent_ids=(specialist, refused)
            )
            with pytest.raises(campaigns.CampaignError, match="do not take callback tasks"):
                campaigns.create_campaign(session, spec, now, upload=upload)
        # The organisation may name more roles that take callback tasks.
        roles = ("callback_specialist", "agent_complaint")
        spec = campaigns.CampaignSpec(
            "y",
            "after_sale",
            "preview",
            "Asia/Shanghai",
            now,
            agent_ids=(specialist, complaint),
            owner_roles=roles,
        )
        campaign = campaigns.create_campaign(session, spec, now, upload=upload)
        owners = session.execute(
            select(CampaignMember.agent_id).where(CampaignMember.campaign_id == campaign.id)
        ).scalars()
        assert sorted(owners) == sorted([specialist, specialist, complaint, complaint])


def test_callback_roles_setting(tmp_path: Path, db: Database) -> None:
    assert make_settings(tmp_path, db.url).dialler.callback_roles == ("callback_specialist",)
    roles = make_settings(
        tmp_path, db.url, dialler={"callback_roles": ["callback_specialist", "agent_complaint"]}
    )
    assert roles.dialler.callback_roles == ("callback_specialist", "agent_complaint")
    with pytest.raises(Exception, match="callback_roles"):
        make_settings(tmp_path, db.url, dialler={"callback_roles": ["callback_wizard"]})


def test_the_new_campaign_page_offers_only_entitled_agents(app: Flask, db: Database, clock: Clock) -> None:
    client, _ = signed_in(app, db, clock, "boss", "supervisor")
    with db.transaction() as session:
        staff_agent(session, clock(), "回访甲")
        staff_agent(session, clock(), "咨询乙", roles=("agent_consultation",))
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert "回访甲" in page and "咨询乙" not in page


# --- who opens a task ----------------------------------------------------------------------------


def test_a_task_opens_for_its_owner_leaders_and_supervisors(app: Flask, db: Database, clock: Clock) -> None:
    owner_client, owner = signed_in(app, db, clock, "owner", "callback_specialist")
    other_client, other = signed_in(app, db, clock, "other", "callback_specialist")
    with db.transaction() as session:
        owner_agent = staff_agent(session, clock(), "甲", user_id=owner.id).id
        staff_agent(session, clock(), "乙", user_id=other.id)
    _, owners = campaign_tasks(db, clock, (owner_agent,))
    task_id = min(owners)
    [owed] = [task for task in add_tasks(db, clock(), ["+8613900139000"]) if task not in owners]
    leader, _ = signed_in(app, db, clock, "leader", "team_leader")
    supervisor, _ = signed_in(app, db, clock, "super", "supervisor")
    plain, _ = signed_in(app, db, clock, "plain", "agent_consultation")
    manager, _ = signed_in(app, db, clock, "manager", "manager")
    assert owner_client.get(f"/callbacks/{task_id}").status_code == 200
    assert leader.get(f"/callbacks/{task_id}").status_code == 200
    assert supervisor.get(f"/callbacks/{task_id}").status_code == 200
    assert other_client.get(f"/callbacks/{task_id}").status_code == 403
    assert plain.get(f"/callbacks/{task_id}").status_code == 403
    assert manager.get(f"/callbacks/{task_id}").status_code == 403
    token = csrf_token(other_client, f"/callbacks/{owed}")
    refused = other_client.post(f"/callbacks/{task_id}", data={"csrf_token": token, "identity": "no"})
    assert refused.status_code == 403
    assert other_client.post(f"/callbacks/{task_id}/dial", data={"csrf_token": token}).status_code == 403
    # An owed callback (no owner) is open to every specialist, not to other agents.
    assert other_client.get(f"/callbacks/{owed}").status_code == 200
    assert owner_client.get(f"/callbacks/{owed}").status_code == 200
    assert plain.get(f"/callbacks/{owed}").status_code == 403
    with db.read() as session:
        assert session.execute(select(CallbackResult)).first() is None


# --- reassignment --------------------------------------------------------------------------------


def test_leaders_reassign_with_an_audit_row(app: Flask, db: Database, clock: Clock) -> None:
    first_client, first = signed_in(app, db, clock, "first", "callback_specialist")
    second_client, second = signed_in(app, db, clock, "second", "callback_specialist")
    with db.transaction() as session:
        first_agent = staff_agent(session, clock(), "甲", user_id=first.id).id
        second_agent = staff_agent(session, clock(), "乙", user_id=second.id).id
        consultant = staff_agent(session, clock(), "咨询", roles=("agent_consultation",)).id
    _, owners = campaign_tasks(db, clock, (first_agent,))
    task_id = min(owners)
    leader, leader_account = signed_in(app, db, clock, "leader", "team_leader")
    screen = leader.get(f"/callbacks/{task_id}").get_data(as_text=True)
    assert f'action="/callbacks/{task_id}/reassign"' in screen and "咨询" not in screen
    token = csrf_token(leader, f"/callbacks/{task_id}")
    url = f"/callbacks/{task_id}/reassign"
    leader.post(url, data={"csrf_token": token, "agent": str(second_agent), "reason": ""})  # no reason
    leader.post(url, data={"csrf_token": token, "agent": str(consultant), "reason": "忙"})  # not entitled
    own_token = csrf_token(first_client, f"/callbacks/{task_id}")
    specialist = first_client.post(
        url, data={"csrf_token": own_token, "agent": str(second_agent), "reason": "x"}
    )
    assert specialist.status_code == 403
    with db.read() as session:
        assert session.execute(select(CampaignMember.agent_id)).scalars().all().count(first_agent) == len(
            owners
        )
        assert session.execute(select(AuditLog).where(AuditLog.action == "callback.reassign")).first() is None
    done = leader.post(url, data={"csrf_token": token, "agent": str(second_agent), "reason": "甲今天病假"})
    assert done.status_code == 302
    with db.read() as session:
        member = session.get(CampaignMember, task_id)
        assert member is not None and member.agent_id == second_agent
        row = session.execute(select(AuditLog).where(AuditLog.action == "callback.reassign")).scalar_one()
        assert (row.object_type, row.object_id, row.reason) == ("callback_task", str(task_id), "甲今天病假")
        assert row.data == {"from_agent": first_agent, "to_agent": second_agent}
        assert (row.user_id, row.username) == (leader_account.id, "leader")
    assert first_client.get(f"/callbacks/{task_id}").status_code == 403
    assert second_client.get(f"/callbacks/{task_id}").status_code == 200
    assert "callback.reassign" in leader.get("/campaigns/audit").get_data(as_text=True)


def test_reassign_refuses_owed_callbacks_and_recorded_tasks(db: Database, clock: Clock) -> None:
    now = clock()
    with db.transaction() as session:
        first = staff_agent(session, now, "甲").id
        second = staff_agent(session, now, "乙").id
        leader_id = staff_agent(session, now, "班长", roles=("supervisor",)).user_id
    _, owners = campaign_tasks(db, clock, (first,))
    task_id = min(owners)
    [owed] = [task for task in add_tasks(db, now, ["+8613900139000"]) if task not in owners]
    with db.transaction() as session:
        actor = session.get(User, leader_id)
        assert actor is not None

        def reassign(task: int, agent: int) -> None:
            callback_tasks.reassign(session, task, agent, actor=actor, reason="r", now=now, owner_roles=ROLES)

        with pytest.raises(callback_tasks.TaskAccessError, match="only campaign tasks"):
            reassign(owed, second)
        with pytest.raises(callback_tasks.TaskAccessError, match="already allocated"):
            reassign(task_id, first)
        task = session.get(CallbackTask, task_id)
        assert task is not None
        add_attempt(session, task, now, "reached")
        callback_results.record_answers(
            session, task_id, callback_results.Answers(False), user=actor, now=now
        )
        with pytest.raises(callback_tasks.TaskAccessError, match="already recorded"):
            reassign(task_id, second)


# --- reached needs an answered call ----------------------------------------------------------------


def test_reached_needs_an_answered_attempt(db: Database, clock: Clock) -> None:
    now = clock()
    ids = add_tasks(db, now, NUMBERS[:3])
    answers = callback_results.Answers(True, problem="p", satisfaction=4)
    with db.transaction() as session:
        never, missed, abandoned = (session.get(CallbackTask, task_id) for task_id in ids)
        assert never is not None and missed is not None and abandoned is not None
        add_attempt(session, missed, now, "no_answer")
        add_attempt(session, abandoned, now, "reached", abandoned=True)  # hung up before an agent
    for task_id in ids:
        with (
            db.transaction() as session,
            pytest.raises(callback_results.ScriptError, match="no answered call"),
        ):
            callback_results.record_answers(session, task_id, answers, user=None, now=now)
        with (
            db.transaction() as session,
            pytest.raises(callback_results.ScriptError, match="no answered call"),
        ):
            callback_results.record_answers(
                session, task_id, answers, user=None, now=now, other_phone_reason="   "
            )
    with db.transaction() as session:
        task = session.get(CallbackTask, ids[1])
        assert task is not None
        add_attempt(session, task, now, "reached")
        result = callback_results.record_answers(session, ids[1], answers, user=None, now=now)
        assert (result.outcome, result.source) == ("reached", "script")
    with db.read() as session:
        assert session.execute(select(CallbackResult.task_id)).scalars().all() == [ids[1]]
        assert (
            session.execute(select(AuditLog).where(AuditLog.action.startswith("callback."))).first() is None
        )


def test_called_from_another_phone_is_audited(app: Flask, db: Database, clock: Clock) -> None:
    client, account = signed_in(app, db, clock, "spec", "callback_specialist")
    [task_id] = add_tasks(db, clock(), NUMBERS[:1])
    screen = client.get(f"/callbacks/{task_id}").get_data(as_text=True)
    assert 'name="other_phone"' in screen
    token = csrf_token(client, f"/callbacks/{task_id}")
    answers = {"csrf_token": token, "identity": "yes", "satisfaction": "5"}
    refused = client.post(f"/callbacks/{task_id}", data=answers, follow_redirects=True)
    assert "No answered call is on record" in refused.get_data(as_text=True)
    no_reason = {**answers, "other_phone": "1", "other_phone_reason": ""}
    client.post(f"/callbacks/{task_id}", data=no_reason)
    with db.read() as session:
        assert session.execute(select(CallbackResult)).first() is None
    reason = {**answers, "other_phone": "1", "other_phone_reason": "客户要求打座机"}
    assert client.post(f"/callbacks/{task_id}", data=reason).status_code == 302
    with db.read() as session:
        result = session.execute(select(CallbackResult)).scalar_one()
        assert (result.task_id, result.source, result.outcome) == (task_id, "other_phone", "reached")
        row = session.execute(select(AuditLog).where(AuditLog.action == "callback.other_phone")).scalar_one()
        assert (row.object_id, row.reason, row.user_id) == (str(task_id), "客户要求打座机", account.id)
        task = session.get(CallbackTask, task_id)
        assert task is not None and task.data["other_phone"] is True


# --- no outbound channel ---------------------------------------------------------------------------


def test_configured_channel(tmp_path: Path, db: Database) -> None:
    assert configured_channel(make_settings(tmp_path, db.url)) is None
    assert configured_channel(make_settings(tmp_path, db.url, ami={"host": "127.0.0.1"})) == "asterisk"
    assert configured_channel(make_settings(tmp_path, db.url, dialler={"channel": "twilio"})) == "twilio"
    twilio = {"account_sid": "AC1", "auth_token": "t", "public_base_url": "https://cc.example.com"}
    assert configured_channel(make_settings(tmp_path, db.url, twilio=twilio, ami={"host": "h"})) == "twilio"


def test_without_a_channel_the_screen_says_so_in_chinese(app: Flask, db: Database, clock: Clock) -> None:
    client, account = signed_in(app, db, clock, "spec", "callback_specialist", locale=None)
    with db.transaction() as session:
        agent = staff_agent(session, clock(), "甲", user_id=account.id).id
    _, owners = campaign_tasks(db, clock, (agent,))
    task_id = min(owners)
    screen = client.get(f"/callbacks/{task_id}").get_data(as_text=True)
    assert "未配置外呼线路" in screen and "请用其他电话拨打客户" in screen
    assert "/dial" not in screen  # no Dial button that would pretend to queue a call
    token = csrf_token(client, f"/callbacks/{task_id}")
    page = client.post(f"/callbacks/{task_id}/dial", data={"csrf_token": token}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "未配置外呼线路" in text and "已排队等待拨打" not in text
    with db.read() as session:
        member = session.get(CampaignMember, task_id)
        assert member is not None and member.released_at is None


def test_with_a_channel_the_dial_button_queues(tmp_path: Path, db: Database, clock: Clock) -> None:
    settings = web_settings_for(tmp_path, db.url, ami={"host": "127.0.0.1"})
    app = create_app(settings, db, clock=clock)
    app.config["TESTING"] = True
    client, account = signed_in(app, db, clock, "spec", "callback_specialist", locale=None)
    with db.transaction() as session:
        agent = staff_agent(session, clock(), "甲", user_id=account.id).id
    _, owners = campaign_tasks(db, clock, (agent,))
    task_id = min(owners)
    screen = client.get(f"/callbacks/{task_id}").get_data(as_text=True)
    assert "未配置外呼线路" not in screen and f"/callbacks/{task_id}/dial" in screen
    token = csrf_token(client, f"/callbacks/{task_id}")
    page = client.post(f"/callbacks/{task_id}/dial", data={"csrf_token": token}, follow_redirects=True)
    assert "已排队等待拨打" in page.get_data(as_text=True)
    with db.read() as session:
        member = session.get(CampaignMember, task_id)
        assert member is not None and member.released_at == clock()
