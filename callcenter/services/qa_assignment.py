"""Handing samples to evaluators: round-robin over the QA staff, at most ``cap`` a day each.

The rotation continues after whoever got the last review assignment, so over days the work is even.
Nobody reviews a call they handled themselves. Samples over the day's capacity stay unassigned and
are handed out first on the next run (the daily job and ``callcenter qa draw`` both call this).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.models import Agent, QAAssignment, QASample, User, UserRole


@dataclass(frozen=True)
class Evaluator:
    user_id: int
    agent_id: int | None  # their own agent record, if they also take calls


def qa_staff(session: Session) -> list[Evaluator]:
    rows = session.execute(
        select(User.id, Agent.id)
        .join(UserRole, UserRole.user_id == User.id)
        .outerjoin(Agent, Agent.user_id == User.id)
        .where(UserRole.role == "qa", User.active.is_(True))
        .order_by(User.id)
    ).all()
    return [Evaluator(user_id, agent_id) for user_id, agent_id in rows]


def _rotation(staff: Sequence[Evaluator], last_user: int | None) -> list[Evaluator]:
    """The staff in order, starting after ``last_user``."""
    if last_user is None:
        return list(staff)
    after = [e for e in staff if e.user_id > last_user]
    return after + [e for e in staff if e.user_id <= last_user]


def assign_pending(session: Session, *, now: datetime, zone: ZoneInfo, cap: int) -> int:
    """Give every unassigned sample a reviewer while capacity lasts; returns how many were given."""
    today = now.astimezone(zone).date()
    staff = qa_staff(session)
    if not staff:
        return 0
    has_review = select(QAAssignment.id).where(
        QAAssignment.sample_id == QASample.id, QAAssignment.purpose == "review"
    )
    pending = session.execute(
        select(QASample.id, QASample.agent_id).where(~has_review.exists()).order_by(QASample.id)
    ).all()
    if not pending:
        return 0
    load = _load(session, today)
    last_user = session.execute(
        select(QAAssignment.user_id)
        .where(QAAssignment.purpose == "review")
        .order_by(QAAssignment.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    queue = _rotation(staff, last_user)
    given = 0
    for sample_id, agent_id in pending:
        chosen = _next(queue, load, cap, agent_id)
        if chosen is None:
            if all(load[e.user_id] >= cap for e in staff):
                break
            continue
        session.add(
            QAAssignment(
                sample_id=sample_id,
                user_id=chosen.user_id,
                purpose="review",
                assigned_on=today,
                created_at=now,
            )
        )
        load[chosen.user_id] += 1
        given += 1
    session.flush()
    return given


def _load(session: Session, day: date) -> defaultdict[int, int]:
    counts = session.execute(
        select(QAAssignment.user_id, func.count())
        .where(QAAssignment.assigned_on == day)
        .group_by(QAAssignment.user_id)
    ).all()
    load: defaultdict[int, int] = defaultdict(int)
    load.update({user_id: count for user_id, count in counts})
    return load


def _next(queue: list[Evaluator], load: dict[int, int], cap: int, agent_id: int | None) -> Evaluator | None:
    """The next evaluator in the rotation with room today who did not handle the call; the
    rotation moves past whoever is chosen."""
    for position, evaluator in enumerate(queue):
        if load[evaluator.user_id] >= cap or (agent_id is not None and evaluator.agent_id == agent_id):
            continue
        queue.append(queue.pop(position))
        return evaluator
    return None


def assign(
    session: Session,
    sample_id: int,
    user_id: int,
    *,
    purpose: str,
    now: datetime,
    zone: ZoneInfo,
) -> QAAssignment:
    """One assignment made by hand (calibration, re-score); an existing identical one is returned."""
    existing = session.execute(
        select(QAAssignment).where(
            QAAssignment.sample_id == sample_id,
            QAAssignment.user_id == user_id,
            QAAssignment.purpose == purpose,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    assignment = QAAssignment(
        sample_id=sample_id,
        user_id=user_id,
        purpose=purpose,
        assigned_on=now.astimezone(zone).date(),
        created_at=now,
    )
    session.add(assignment)
    session.flush()
    return assignment
