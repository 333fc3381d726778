"""The admin pages through the test client: forms, CSRF, validation messages, the audit trail."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Agent, AuditLog, Queue, User
from callcenter.services.demo import seed_demo
from tests.web.factories import Account, MakeUser, csrf_token, login

NEW_PASSWORD = "brand-new-password"


@pytest.fixture
def admin_client(client: FlaskClient, make_user: MakeUser) -> FlaskClient:
    login(client, make_user("root", ("admin",)))
    return client


def post(client: FlaskClient, path: str, data: dict[str, object]) -> str:
    response = client.post(path, data={"csrf_token": csrf_token(client, "/admin/users"), **data})
    assert response.status_code in (200, 302), response.status_code
    return response.headers.get("Location", "") or response.get_data(as_text=True)


def user_named(db: Database, username: str) -> User | None:
    with db.read() as session:
        return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def actions(db: Database) -> list[tuple[str, str]]:
    with db.read() as session:
        return [
            (row.action, row.username)
            for row in session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()
        ]


def test_admin_sees_the_admin_link_and_lands_on_calls_only_with_a_call_role(
    admin_client: FlaskClient,
) -> None:
    assert admin_client.get("/").headers["Location"] == "/admin/users"  # an admin alone reads no calls
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert 'href="/admin/users"' in page and "系统管理" in page
    assert 'href="/calls"' not in page


def test_create_an_account(admin_client: FlaskClient, db: Database) -> None:
    location = post(
        admin_client,
        "/admin/users/new",
        {
            "username": "wangfang",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "display_name": "王芳",
            "roles": ["agent_complaint", "callback_specialist"],
            "department": "",
            "locale": "en",
            "active": "y",
        },
    )
    assert location == "/admin/users"
    user = user_named(db, "wangfang")
    assert (
        user is not None and user.roles == {"agent_complaint", "callback_specialist"} and user.locale == "en"
    )
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert "账号 wangfang 已创建。" in page
    assert "投诉受理坐席, 回访专员" in page
    assert actions(db) == [("admin.user.create", "root")]
    new_client = admin_client.application.test_client()
    assert login(new_client, Account(user.id, "wangfang", NEW_PASSWORD)).headers["Location"] == "/console"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password": "short", "confirm": "short"}, "至少 8 个字符。"),
        ({"password": "Newbie-User", "confirm": "Newbie-User"}, "密码不能与用户名相同。"),
        ({"confirm": "something-else"}, "两次输入的密码不一致。"),
        ({"roles": []}, "请至少选择一个角色。"),
        ({"roles": ["department_handler"]}, "部门处理人和部门负责人必须选择部门。"),
        ({"username": "root"}, "该用户名已被使用。"),
        ({"department": "sales"}, "不是有效的选择"),
    ],
)
def test_invalid_accounts_show_the_reason(
    admin_client: FlaskClient, db: Database, data: dict[str, object], message: str
) -> None:
    form: dict[str, object] = {
        "username": "newbie-user",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
        "display_name": "新人",
        "roles": ["qa"],
        "department": "",
        "locale": "",
        "active": "y",
        **data,
    }
    page = post(admin_client, "/admin/users/new", form)
    assert message in page
    assert 'class="field-error"' in page
    assert user_named(db, "newbie-user") is None
    assert actions(db) == []


def test_edit_roles_department_and_deactivate(
    admin_client: FlaskClient, make_user: MakeUser, db: Database
) -> None:
    account = make_user("zhao", ("agent_consultation",))
    page = admin_client.get(f"/admin/users/{account.id}").get_data(as_text=True)
    assert 'value="agent_consultation" checked' in page or re.search(
        r'checked[^>]*value="agent_consultation"', page
    )
    location = post(
        admin_client,
        f"/admin/users/{account.id}",
        {
            "display_name": "赵六",
            "roles": ["department_handler"],
            "department": "tech_rd",
            "is_department_head": "y",
            "locale": "",
        },
    )
    assert location == "/admin/users"
    user = user_named(db, "zhao")
    assert user is not None
    assert (user.roles, user.department, user.is_department_head, user.active) == (
        {"department_handler"},
        "tech_rd",
        True,
        False,  # the unticked "active" box
    )
    departments = admin_client.get("/admin/departments").get_data(as_text=True)
    assert "技术研发部" in departments and "802@callcenter-departments" in departments
    assert "赵六" not in departments  # deactivated accounts handle nothing
    with db.read() as session:
        [row] = session.execute(select(AuditLog).where(AuditLog.action == "admin.user.update")).scalars()
        assert row.data["changes"]["active"] == [True, False]
    audit_page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "admin.user.update" in audit_page and "赵六" in audit_page


def test_admin_cannot_deactivate_themselves(admin_client: FlaskClient, db: Database) -> None:
    me = user_named(db, "root")
    assert me is not None
    page = post(
        admin_client, f"/admin/users/{me.id}", {"display_name": "root", "roles": ["admin"], "locale": ""}
    )
    assert "不能停用自己的账号。" in page
    assert user_named(db, "root") is not None and me.active


def test_reset_a_password(admin_client: FlaskClient, make_user: MakeUser, db: Database) -> None:
    account = make_user("zhao")
    page = post(admin_client, f"/admin/users/{account.id}/password", {"password": "zhao", "confirm": "zhao"})
    assert "至少 8 个字符。" in page
    location = post(
        admin_client,
        f"/admin/users/{account.id}/password",
        {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert location == f"/admin/users/{account.id}"
    fresh = admin_client.application.test_client()
    assert login(fresh, Account(account.id, "zhao", NEW_PASSWORD)).status_code == 302
    assert ("admin.user.password", "root") in actions(db)


def test_forms_need_the_csrf_token(admin_client: FlaskClient, db: Database) -> None:
    response = admin_client.post("/admin/users/new", data={"username": "x", "password": NEW_PASSWORD})
    assert response.status_code == 400
    assert user_named(db, "x") is None


def test_agents_and_queues(admin_client: FlaskClient, db: Database, now: datetime) -> None:
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password-1")
        complaint = session.execute(select(Queue).where(Queue.name == "complaint")).scalar_one().id
        lina = session.execute(select(User).where(User.username == "lina")).scalar_one().id
    listing = admin_client.get("/admin/agents").get_data(as_text=True)
    assert "PJSIP/1001" in listing and "张伟" in listing
    location = post(
        admin_client,
        "/admin/agents/new",
        {
            "name": "赵敏",
            "extension": "PJSIP/1009",
            "twilio_identity": "zhaomin",
            "skill_level": "senior",
            "team": "B",
            "queue_ids": [str(complaint)],
            "user_id": "",
            "active": "y",
        },
    )
    assert location == "/admin/agents"
    page = post(
        admin_client,
        "/admin/agents/new",
        {"name": "重复", "extension": "PJSIP/1009", "skill_level": "junior", "user_id": ""},
    )
    assert "已被其他记录使用。" in page  # the extension
    page = post(
        admin_client, "/admin/agents/new", {"name": "重复", "skill_level": "junior", "user_id": str(lina)}
    )
    assert "不是有效的选择" in page  # lina's account has an agent already: not offered
    with db.read() as session:
        agent = session.execute(select(Agent).where(Agent.name == "赵敏")).scalar_one()
        assert [queue.name for queue in agent.queues] == ["complaint"] and agent.skill_level == "senior"
        agent_id = agent.id
    location = post(
        admin_client,
        "/admin/queues/new",
        {"name": "vip_line", "title_zh": "贵宾", "title_en": "VIP", "agent_ids": [str(agent_id)]},
    )
    assert location == "/admin/queues"
    assert "Lower-case" in post(
        admin_client, "/admin/queues/new", {"name": "VIP Line"}
    ) or "小写字母" in post(admin_client, "/admin/queues/new", {"name": "VIP Line"})
    queues = admin_client.get("/admin/queues").get_data(as_text=True)
    assert "vip_line" in queues and "贵宾" in queues and "赵敏" in queues
    assert [action for action, _who in actions(db)] == ["admin.agent.create", "admin.queue.create"]


def test_unknown_records_are_404(admin_client: FlaskClient) -> None:
    for path in ("/admin/users/999", "/admin/agents/999", "/admin/queues/999"):
        assert admin_client.get(path).status_code == 404
