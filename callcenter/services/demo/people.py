"""Demo people: the two queues, a few agents and callers (one VIP), the other desks, an admin.

Idempotent: running it again adds nothing that is already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Agent, Queue
from callcenter.services import callers, users

QUEUES = (("consultation", "业务咨询", "Consultation"), ("complaint", "投诉建议", "Complaints & suggestions"))
# username, display name, roles, extension, queues
AGENTS = (
    ("zhangwei", "张伟", ("agent_consultation",), "PJSIP/1001", ("consultation",)),
    ("lina", "李娜", ("agent_complaint",), "PJSIP/1002", ("complaint",)),
    (
        "wangfang",
        "王芳",
        ("agent_consultation", "agent_complaint"),
        "PJSIP/1003",
        ("consultation", "complaint"),
    ),
)
# The callback specialist has an outbound line (campaign tasks are allocated to agent records).
CALLBACK_LINE = ("chenjing", "陈静", "PJSIP/1004")
# Staff without a queue: username, display name, roles, department (a code of settings' departments), head?
STAFF = (
    ("sunli", "孙丽", ("team_leader",), None, False),
    ("chenjing", "陈静", ("callback_specialist",), None, False),
    ("zhaomin", "赵敏", ("qa",), None, False),
    ("liuqiang", "刘强", ("complaint_head",), None, False),
    ("zhoujie", "周杰", ("department_handler",), "after_sales", True),
)
CALLERS = (
    ("+8613800138000", "张三", "vip"),
    ("+8613900139000", "李四", "key"),
    ("+8615000150000", "王五", "normal"),
    ("+862161234567", "上海某某贸易有限公司", "normal"),
)
ADMIN_USERNAME = "admin"
DEMO_AGENT_PASSWORD = "agent-demo-2026"  # noqa: S105 - demo data, printed by make run


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    created: bool


def seed_demo(session: Session, *, now: datetime, admin_password: str) -> list[DemoLogin]:
    queues = {}
    for name, title_zh, title_en in QUEUES:
        queue = session.execute(select(Queue).where(Queue.name == name)).scalar_one_or_none()
        if queue is None:
            queue = Queue(name=name, title_zh=title_zh, title_en=title_en, created_at=now)
            session.add(queue)
        queues[name] = queue
    logins = [_ensure_user(session, ADMIN_USERNAME, admin_password, ("admin", "supervisor"), "管理员", now)]
    for username, display, roles, extension, queue_names in AGENTS:
        login = _ensure_user(session, username, DEMO_AGENT_PASSWORD, roles, display, now)
        logins.append(login)
        user = users.find_user(session, username)
        assert user is not None
        if user.agent is None:
            session.add(
                Agent(
                    name=display,
                    extension=extension,
                    skill_level="mid",
                    user=user,
                    queues=[queues[q] for q in queue_names],
                    created_at=now,
                )
            )
    for username, display, roles, department, head in STAFF:
        logins.append(_ensure_user(session, username, DEMO_AGENT_PASSWORD, roles, display, now))
        user = users.find_user(session, username)
        assert user is not None
        if department is not None and user.department is None:
            user.department, user.is_department_head = department, head
        if username == CALLBACK_LINE[0] and user.agent is None:
            session.add(
                Agent(name=display, extension=CALLBACK_LINE[2], skill_level="mid", user=user, created_at=now)
            )
    for e164, name, tier in CALLERS:
        caller = callers.ensure_caller(session, e164, now=now, name=name, tier=tier)
        caller.name, caller.tier = caller.name or name, tier
    session.flush()
    return logins


def _ensure_user(
    session: Session, username: str, password: str, roles: tuple[str, ...], display: str, now: datetime
) -> DemoLogin:
    if users.find_user(session, username) is not None:
        return DemoLogin(username, password, created=False)
    users.create_user(session, username, password, roles, now=now, display_name=display)
    return DemoLogin(username, password, created=True)
