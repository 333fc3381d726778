"""Accounts and cases for the case tests, made straight in the database (no password hashing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from callcenter.models import Agent, Queue, User, UserRole
from callcenter.services import cases
from callcenter.settings import Settings


def person(
    session: Session,
    username: str,
    *roles: str,
    now: datetime,
    department: str | None = None,
    head: bool = False,
    queues: tuple[str, ...] = (),
) -> User:
    user = User(
        username=username,
        display_name=username,
        password_hash="-",
        active=True,
        department=department,
        is_department_head=head,
        created_at=now,
    )
    user.role_rows = [UserRole(role=role) for role in roles]
    session.add(user)
    if queues or set(roles) & set(cases.AGENT_ROLES):
        agent = Agent(name=username, user=user, created_at=now)
        session.add(agent)
        with session.no_autoflush:
            for name in queues:
                queue = session.query(Queue).filter_by(name=name).one_or_none()
                agent.queues.append(queue or Queue(name=name, created_at=now))
    session.flush()
    return user


def policy(settings: Settings | None = None) -> cases.CasePolicy:
    return cases.CasePolicy.from_settings(settings or Settings())


def complaint(**changes: object) -> cases.NewCase:
    new = cases.NewCase(
        case_type="complaint",
        title="门打不开",
        content="设备门打不开,已经三天了",
        category="product",
        contact_name="李四",
        contact_number="13912345678",
        queue_name="complaint",
    )
    for name, value in changes.items():
        setattr(new, name, value)
    return new
