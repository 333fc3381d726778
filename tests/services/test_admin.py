"""Account, agent and queue administration: the rules and the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from callcenter.db import Database
from callcenter.models import Agent, AuditLog, Queue, User
from callcenter.services import admin, staffing
from callcenter.services.admin import AccountFields, Actor, AdminError
from callcenter.services.login_throttle import ThrottleRules, current_lock, record_failure
from callcenter.services.staffing import AgentFields, QueueFields
from callcenter.services.users import authenticate, create_user, password_problems

DEPARTMENTS = ("after_sales", "tech_rd", "product_rd")
PASSWORD = "a-long-password"


@pytest.fixture
def boss(db: Database, now: datetime) -> Actor:
    with db.transaction() as session:
        user = create_user(session, "boss", PASSWORD, ["admin"], now=now)
        return Actor(user.id, "boss", "192.0.2.7")


def fields(**overrides: Any) -> AccountFields:
    values: dict[str, Any] = {"display_name": "李娜", "roles": frozenset({"agent_complaint"})}
    return AccountFields(**{**values, **overrides})


def create(db: Database, boss: Actor, now: datetime, username: str = "lina", **overrides: Any) -> int:
    with db.transaction() as session:
        user = admin.create_account(
            session,
            boss,
            username,
            overrides.pop("password", PASSWORD),
            fields(**overrides),
            departments=DEPARTMENTS,
            min_password_length=8,
            now=now,
        )
        return user.id


def audit_rows(db: Database) -> list[AuditLog]:
    with db.read() as session:
        return list(session.execute(select(AuditLog).order_by(AuditLog.id)).scalars())


def refused(db: Database, change: Any, field: str, code: str) -> None:
    with pytest.raises(AdminError) as caught, db.transaction() as session:
        change(session)
    assert (caught.value.field, caught.value.code) == (field, code)


@pytest.mark.parametrize(
    ("password", "username", "problems"),
    [
        ("short", "lina", ("too_short",)),
        ("Lina-Lina", "lina-lina", ("same_as_username",)),
        (" LINA12345 ", "lina12345", ("same_as_username",)),
        ("x" * 257, "lina", ("too_long",)),
        ("a-long-password", "lina", ()),
    ],
)
def test_password_policy(password: str, username: str, problems: tuple[str, ...]) -> None:
    assert password_problems(password, username, min_length=8) == problems


def test_create_account_is_audited_without_the_password(db: Database, now: datetime, boss: Actor) -> None:
    user_id = create(db, boss, now, department="after_sales", locale="en")
    with db.read() as session:
        user = session.get(User, user_id)
        assert user is not None
        assert (user.display_name, user.roles, user.department, user.locale) == (
            "李娜",
            {"agent_complaint"},
            "after_sales",
            "en",
        )
        assert authenticate(session, "lina", PASSWORD) is not None
    [row] = audit_rows(db)
    assert (row.action, row.object_type, row.object_id, row.username, row.remote_addr, row.at) == (
        "admin.user.create",
        "user",
        str(user_id),
        "boss",
        "192.0.2.7",
        now,
    )
    assert row.data["roles"] == ["agent_complaint"]
    assert PASSWORD not in str(row.data)


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"password": "lina"}, "password", "too_short"),
        ({"password": "LINA-user"}, "password", "same_as_username"),
        ({"roles": frozenset()}, "roles", "required"),
        ({"roles": frozenset({"wizard"})}, "roles", "unknown"),
        ({"department": "sales"}, "department", "unknown"),
        ({"roles": frozenset({"department_handler"})}, "department", "required"),
        ({"is_department_head": True}, "department", "required"),
        ({"display_name": " "}, "display_name", "length"),
        ({"locale": "fr"}, "locale", "unknown"),
    ],
)
def test_bad_accounts_are_refused(
    db: Database, now: datetime, boss: Actor, overrides: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(AdminError) as caught:
        create(db, boss, now, "lina-user", **overrides)
    assert (caught.value.field, caught.value.code) == (field, code)
    with db.read() as session:
        assert session.execute(select(User).where(User.username == "lina-user")).first() is None
    assert audit_rows(db) == []


def test_a_taken_username_is_refused(db: Database, now: datetime, boss: Actor) -> None:
    with pytest.raises(AdminError, match="username: taken"):
        create(db, boss, now, "boss")


def test_update_records_old_and_new_values(db: Database, now: datetime, boss: Actor) -> None:
    user_id = create(db, boss, now)
    change = fields(
        display_name="李娜娜",
        roles=frozenset({"department_handler"}),
        department="tech_rd",
        is_department_head=True,
        active=False,
    )
    with db.transaction() as session:
        changes = admin.update_account(session, boss, user_id, change, departments=DEPARTMENTS, now=now)
    assert changes == {
        "display_name": ["李娜", "李娜娜"],
        "roles": [["agent_complaint"], ["department_handler"]],
        "department": [None, "tech_rd"],
        "is_department_head": [False, True],
        "active": [True, False],
    }
    last = audit_rows(db)[-1]
    assert (last.action, last.data["changes"]) == ("admin.user.update", changes)
    with db.read() as session:
        assert authenticate(session, "lina", PASSWORD) is None  # deactivated
        assert [user.username for user in admin.handlers_by_department(session).get("tech_rd", [])] == []


def test_an_unchanged_save_writes_no_audit_row(db: Database, now: datetime, boss: Actor) -> None:
    user_id = create(db, boss, now)
    with db.transaction() as session:
        assert admin.update_account(session, boss, user_id, fields(), departments=DEPARTMENTS, now=now) == {}
    assert len(audit_rows(db)) == 1


def test_admins_cannot_lock_themselves_or_everyone_out(db: Database, now: datetime, boss: Actor) -> None:
    me = boss.user_id
    assert me is not None

    def update(actor: Actor, change: AccountFields) -> Any:
        return lambda session: admin.update_account(
            session, actor, me, change, departments=DEPARTMENTS, now=now
        )

    inactive_admin = fields(display_name="boss", roles=frozenset({"admin"}), active=False)
    not_admin = fields(display_name="boss", roles=frozenset({"qa"}))
    refused(db, update(boss, inactive_admin), "active", "self_deactivate")
    refused(db, update(boss, not_admin), "roles", "self_admin")
    script = Actor(None, "cli")  # someone else acting: the last active admin still stays
    refused(db, update(script, not_admin), "roles", "last_admin")
    refused(db, update(script, inactive_admin), "roles", "last_admin")
    create(db, boss, now, "second", roles=frozenset({"admin"}))
    with db.transaction() as session:
        update(script, not_admin)(session)  # another admin remains


def test_reset_password_applies_the_policy_and_lifts_a_lock(db: Database, now: datetime, boss: Actor) -> None:
    user_id = create(db, boss, now)
    rules = ThrottleRules(5, 30, timedelta(minutes=15), timedelta(minutes=15))
    with db.transaction() as session:
        for _ in range(5):
            record_failure(session, "lina", None, rules, now=now)
    refused(
        db,
        lambda session: admin.reset_password(session, boss, user_id, "lina", min_password_length=8, now=now),
        "password",
        "too_short",
    )
    with db.transaction() as session:
        admin.reset_password(session, boss, user_id, "another-password", min_password_length=8, now=now)
    with db.read() as session:
        user = session.get(User, user_id)
        assert user is not None and check_password_hash(user.password_hash, "another-password")
        assert current_lock(session, "lina", None, now=now) is None
    last = audit_rows(db)[-1]
    assert last.action == "admin.user.password" and "another-password" not in str(last.data)


# --- agents and queues ----------------------------------------------------------------------------


def queue(
    db: Database, boss: Actor, now: datetime, name: str, agent_ids: frozenset[int] = frozenset()
) -> int:
    with db.transaction() as session:
        return staffing.create_queue(
            session, boss, name, QueueFields("咨询", "Consultation", agent_ids), now=now
        ).id


def agent_fields(**overrides: Any) -> AgentFields:
    values: dict[str, Any] = {
        "name": "张伟",
        "extension": "PJSIP/1001",
        "twilio_identity": "zhangwei",
        "skill_level": "mid",
        "team": "A",
        "queue_ids": frozenset(),
        "user_id": None,
    }
    return AgentFields(**{**values, **overrides})


def test_agents_with_queues_and_an_account(db: Database, now: datetime, boss: Actor) -> None:
    consultation = queue(db, boss, now, "consultation")
    complaint = queue(db, boss, now, "complaint")
    user_id = create(db, boss, now, "zhangwei")
    with db.transaction() as session:
        agent = staffing.create_agent(
            session, boss, agent_fields(queue_ids=frozenset({consultation}), user_id=user_id), now=now
        )
        agent_id = agent.id
    with db.transaction() as session:
        changes = staffing.update_agent(
            session,
            boss,
            agent_id,
            agent_fields(
                queue_ids=frozenset({consultation, complaint}), skill_level="senior", user_id=user_id
            ),
            now=now,
        )
    assert changes == {
        "skill_level": ["mid", "senior"],
        "queues": [["consultation"], ["complaint", "consultation"]],
    }
    with db.read() as session:
        stored = session.get(Agent, agent_id)
        assert stored is not None and stored.user is not None and stored.user.username == "zhangwei"
    actions = [row.action for row in audit_rows(db)]
    assert actions.count("admin.agent.create") == 1 and actions[-1] == "admin.agent.update"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"extension": "PJSIP/1001"}, "extension", "taken"),
        ({"twilio_identity": "zhangwei"}, "twilio_identity", "taken"),
        ({"extension": "PJSIP/10 01"}, "extension", "format"),
        ({"twilio_identity": "zhang wei"}, "twilio_identity", "format"),
        ({"skill_level": "guru"}, "skill_level", "unknown"),
        ({"queue_ids": frozenset({987654})}, "queue_ids", "not_found"),
        ({"user_id": 987654}, "user_id", "not_found"),
    ],
)
def test_bad_agents_are_refused(
    db: Database, now: datetime, boss: Actor, overrides: dict[str, Any], field: str, code: str
) -> None:
    with db.transaction() as session:
        staffing.create_agent(session, boss, agent_fields(), now=now)
    second = agent_fields(extension="PJSIP/1002", twilio_identity="other", **{"name": "王芳"})
    second = AgentFields(**{**second.__dict__, **overrides})
    refused(db, lambda session: staffing.create_agent(session, boss, second, now=now), field, code)


def test_one_account_one_agent(db: Database, now: datetime, boss: Actor) -> None:
    user_id = create(db, boss, now, "zhangwei")
    with db.transaction() as session:
        staffing.create_agent(session, boss, agent_fields(user_id=user_id), now=now)
    second = agent_fields(extension=None, twilio_identity=None, user_id=user_id)
    refused(db, lambda session: staffing.create_agent(session, boss, second, now=now), "user_id", "taken")


def test_queues_are_named_once_and_keep_their_agents(db: Database, now: datetime, boss: Actor) -> None:
    with db.transaction() as session:
        agent_id = staffing.create_agent(session, boss, agent_fields(), now=now).id
    queue_id = queue(db, boss, now, "vip_line", frozenset({agent_id}))
    refused(
        db,
        lambda session: staffing.create_queue(
            session, boss, "vip_line", QueueFields("", "", frozenset()), now=now
        ),
        "name",
        "taken",
    )
    refused(
        db,
        lambda session: staffing.create_queue(
            session, boss, "VIP Line", QueueFields("", "", frozenset()), now=now
        ),
        "name",
        "format",
    )
    with db.transaction() as session:
        changes = staffing.update_queue(
            session, boss, queue_id, QueueFields("贵宾", "VIP", frozenset()), now=now
        )
    assert changes == {
        "title_zh": ["咨询", "贵宾"],
        "title_en": ["Consultation", "VIP"],
        "agents": [[agent_id], []],
    }
    with db.read() as session:
        stored = session.get(Queue, queue_id)
        assert stored is not None and stored.name == "vip_line" and stored.agents == []
    assert audit_rows(db)[-1].data == {"name": "vip_line", "changes": changes}
