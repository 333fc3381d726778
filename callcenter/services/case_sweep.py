"""The SLA sweep (every minute, from the scheduler) and the in-app notices it raises.

Running it twice changes nothing the second time: a case is marked ``delayed`` once, a late first
reply is noted once (an event of that kind exists), a warning is a notice keyed by its promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.exceptions import NotFound
from callcenter.models import CallbackTask, Case, CaseEvent, Notice
from callcenter.services.case_rules import CasePolicy, add_event
from callcenter.settings import CaseRules

# --- the SLA sweep ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    delayed: int = 0
    first_reply_overdue: int = 0
    warnings: int = 0


def sweep(session: Session, *, policy: CasePolicy, now: datetime) -> SweepResult:
    """Mark overdue cases ``delayed``, note first replies that are late, and warn owners of promised
    replies coming due. Run every minute; running it twice changes nothing the second time."""
    delayed = _mark_delayed(session, now)
    first = _mark_first_reply_overdue(session, now)
    warnings = _warn_promises(session, policy.rules, now)
    return SweepResult(delayed, first, warnings)


def _mark_delayed(session: Session, now: datetime) -> int:
    query = select(Case).where(Case.status != "closed", Case.delayed.is_(False), Case.resolution_due_at < now)
    cases = list(session.execute(query).scalars())
    for case in cases:
        case.delayed = True
        add_event(case, "overdue", None, now, data={"due": case.resolution_due_at.isoformat()})
    return len(cases)


def _mark_first_reply_overdue(session: Session, now: datetime) -> int:
    noted = exists().where(CaseEvent.case_id == Case.id, CaseEvent.kind == "first_reply_overdue")
    query = select(Case).where(
        Case.status != "closed",
        Case.first_replied_at.is_(None),
        Case.first_reply_due_at < now,
        ~noted,
    )
    cases = list(session.execute(query).scalars())
    for case in cases:
        add_event(case, "first_reply_overdue", None, now, data={"due": case.first_reply_due_at.isoformat()})
    return len(cases)


def _warn_promises(session: Session, rules: CaseRules, now: datetime) -> int:
    """A notice to the case's owner once a promised reply is less than the warning time away."""
    horizon = now + timedelta(minutes=rules.promise_warning_minutes)
    query = select(CallbackTask).where(
        CallbackTask.kind == "promised_reply",
        CallbackTask.status.in_(("pending", "unreachable")),
        CallbackTask.due_at <= horizon,
        CallbackTask.due_at > now,
    )
    rows = []
    for task in session.execute(query).scalars():
        case = session.get(Case, int(task.data.get("case_id") or 0))
        user_id = case.owner_id or case.created_by_id if case is not None else None
        if case is None or user_id is None or case.status == "closed":
            continue
        rows.append(
            {
                "key": f"{task.key}:warning",
                "user_id": user_id,
                "kind": "promise_due_soon",
                "case_id": case.id,
                "data": {"number": case.number},
                "due_at": task.due_at,
                "created_at": now,
                "read_at": None,
            }
        )
    if not rows:
        return 0
    keys = [row["key"] for row in rows]
    known = set(session.execute(select(Notice.key).where(Notice.key.in_(keys))).scalars())
    insert_ignoring_duplicates(session, Notice, rows, ["key"])
    return len(set(keys) - known)


# --- notices ---------------------------------------------------------------------------------------


def unread_notices(session: Session, user_id: int) -> list[Notice]:
    query = (
        select(Notice)
        .where(Notice.user_id == user_id, Notice.read_at.is_(None))
        .order_by(Notice.created_at.desc(), Notice.id.desc())
    )
    return list(session.execute(query).scalars())


def mark_notice_read(session: Session, notice_id: int, *, user_id: int, now: datetime) -> None:
    notice = session.get(Notice, notice_id)
    if notice is None or notice.user_id != user_id:
        raise NotFound(f"notice {notice_id}")
    if notice.read_at is None:
        notice.read_at = now
