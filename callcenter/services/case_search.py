"""Finding cases: the search form's filters and what each viewer may see, as one SQL query.

The visibility rule is the SQL twin of :func:`callcenter.services.cases.can_view`: roles that steer
every case see all; a department handler sees the cases of their department; an agent sees the cases
they took, created or own, and those of the queues they serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, false, or_, select, true
from sqlalchemy.orm import Session, selectinload

from callcenter.models import Agent, Case
from callcenter.models.user import User
from callcenter.services.call_search import NumberPattern
from callcenter.services.cases import AGENT_ROLES, ALL_CASES_ROLES

MAX_ROWS = 200


@dataclass(frozen=True)
class CaseFilter:
    text: str = ""  # case number, contact name or title
    # The customer's phone number: exact, or a run of its digits (read by call_search.number_pattern;
    # whether the viewer may search by part of one is the web's decision, as for calls).
    number: NumberPattern | None = None
    date_from: date | None = None  # registration day, in the organisation's zone
    date_to: date | None = None
    queue: str = ""
    agent_id: int | None = None
    status: str = ""
    case_type: str = ""
    department: str = ""
    delayed: bool = False
    dissatisfied: bool = False
    major: bool = False
    follow_up: str = ""


def visible_to(user: User) -> ColumnElement[bool]:
    if user.has_role(*ALL_CASES_ROLES):
        return true()
    clauses: list[ColumnElement[bool]] = []
    if user.has_role("department_handler") and user.department:
        clauses.append(Case.department == user.department)
    if user.has_role(*AGENT_ROLES):
        clauses += [Case.created_by_id == user.id, Case.owner_id == user.id]
        if user.agent is not None:
            clauses.append(Case.agent_id == user.agent.id)
            queues = [queue.name for queue in user.agent.queues]
            if queues:
                clauses.append(Case.queue_name.in_(queues))
    return or_(*clauses) if clauses else false()


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _text_clause(text: str) -> ColumnElement[bool]:
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(
        Case.number.ilike(pattern, escape="\\"),
        Case.contact_name.ilike(pattern, escape="\\"),
        Case.title.ilike(pattern, escape="\\"),
    )


def _number_clause(number: NumberPattern) -> ColumnElement[bool]:
    if number.exact is not None:
        return Case.contact_e164 == number.exact
    return Case.contact_e164.like(f"%{number.digits}%") if number.digits else true()


def search_query(wanted: CaseFilter, *, viewer: User, zone: ZoneInfo) -> Select[tuple[Case]]:
    query = select(Case).where(visible_to(viewer))
    text = wanted.text.strip()
    if text:
        query = query.where(_text_clause(text))
    if wanted.number is not None:
        query = query.where(_number_clause(wanted.number))
    if wanted.date_from is not None:
        query = query.where(Case.registered_at >= _day_start(wanted.date_from, zone))
    if wanted.date_to is not None:
        query = query.where(Case.registered_at < _day_start(wanted.date_to + timedelta(days=1), zone))
    simple = {
        Case.queue_name: wanted.queue,
        Case.status: wanted.status,
        Case.case_type: wanted.case_type,
        Case.department: wanted.department,
        Case.follow_up: wanted.follow_up,
    }
    for column, value in simple.items():
        if value:
            query = query.where(column == value)
    if wanted.agent_id is not None:
        query = query.where(Case.agent_id == wanted.agent_id)
    if wanted.delayed:
        query = query.where(Case.delayed.is_(True))
    if wanted.dissatisfied:
        query = query.where(Case.follow_up == "dissatisfied_with_result")
    if wanted.major:
        query = query.where(Case.urgency == "major")
    return query


def listing(wanted: CaseFilter, *, viewer: User, zone: ZoneInfo) -> Select[tuple[Case]]:
    """The list's query: newest first, the id last so that pages are stable."""
    return (
        search_query(wanted, viewer=viewer, zone=zone)
        .options(selectinload(Case.agent))
        .order_by(Case.registered_at.desc(), Case.id.desc())
    )


def search_cases(
    session: Session, wanted: CaseFilter, *, viewer: User, zone: ZoneInfo, limit: int = MAX_ROWS
) -> list[Case]:
    """Cases matching ``wanted`` that ``viewer`` may see, newest first (the first ``limit``)."""
    query = listing(wanted, viewer=viewer, zone=zone).limit(limit)
    return list(session.execute(query).scalars())


def agents(session: Session) -> list[Agent]:
    return list(session.execute(select(Agent).order_by(Agent.name)).scalars())
