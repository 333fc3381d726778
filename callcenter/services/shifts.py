"""The team leader's shift: open cases and pending callbacks, and the handover record (F61, F62).

At the end of a shift the team leader hands over: who was on duty, who receives, and the pending
items (open cases, callbacks not done) as they stood then. The next shift sees the latest handover
addressed to it when its people sign in, and the receiving person acknowledges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import CallbackTask, Case, ShiftHandover, User
from callcenter.services.presence import ConsoleError, ShiftWindow

OPEN_TASK_STATUSES = ("pending", "claimed", "dialling")
MAX_ITEMS = 500
MAX_NOTE = 4000


@dataclass(frozen=True)
class ShiftItems:
    cases: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]

    @property
    def count(self) -> int:
        return len(self.cases) + len(self.callbacks)

    def as_items(self) -> list[dict[str, Any]]:
        return [*self.cases, *self.callbacks]


def shift_items(session: Session, window: ShiftWindow) -> ShiftItems:
    """Cases not closed that were registered before the shift's end, and callback tasks still to do
    that fall due before it: what the shift has to work on or hand over."""
    cases = session.execute(
        select(Case)
        .where(Case.status != "closed", Case.registered_at < window.end)
        .order_by(Case.resolution_due_at, Case.id)
        .limit(MAX_ITEMS)
    ).scalars()
    tasks = session.execute(
        select(CallbackTask)
        .where(CallbackTask.status.in_(OPEN_TASK_STATUSES), CallbackTask.due_at < window.end)
        .order_by(CallbackTask.due_at, CallbackTask.id)
        .limit(MAX_ITEMS)
    ).scalars()
    return ShiftItems(
        [
            {
                "kind": "case",
                "id": case.id,
                "ref": case.number,
                "status": case.status,
                "type": case.case_type,
                "title": case.title,
                "due_at": case.resolution_due_at.isoformat(),
                "delayed": case.delayed,
            }
            for case in cases
        ],
        [
            {
                "kind": "callback",
                "id": task.id,
                "ref": f"CB-{task.id}",
                "status": task.status,
                "type": task.kind,
                "title": task.note[:200],
                "due_at": task.due_at.isoformat(),
                "delayed": task.due_at < window.start,
            }
            for task in tasks
        ],
    )


def submit_handover(
    session: Session,
    window: ShiftWindow,
    *,
    team: str,
    on_duty_id: int,
    receiving_id: int | None,
    note: str,
    now: datetime,
) -> ShiftHandover:
    """Record (or, before it is acknowledged, correct) the handover of ``window`` for ``team``."""
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ConsoleError(f"the note is longer than {MAX_NOTE} characters")
    if receiving_id is not None and session.get(User, receiving_id) is None:
        raise ConsoleError("unknown receiving person")
    if receiving_id == on_duty_id:
        raise ConsoleError("the receiving person must be someone else")
    items = shift_items(session, window)
    handover = session.execute(
        select(ShiftHandover).where(
            ShiftHandover.shift_day == window.day,
            ShiftHandover.shift_code == window.code,
            ShiftHandover.team == team,
        )
    ).scalar_one_or_none()
    if handover is not None and handover.acknowledged_at is not None:
        raise ConsoleError("this handover was acknowledged already")
    if handover is None:
        handover = ShiftHandover(shift_day=window.day, shift_code=window.code, team=team, created_at=now)
        session.add(handover)
    handover.on_duty_id, handover.receiving_id, handover.note = on_duty_id, receiving_id, note
    handover.items, handover.pending_count = items.as_items(), items.count
    handover.created_at = now
    session.flush()
    return handover


def latest_handover(session: Session, *, before: datetime, team: str | None = None) -> ShiftHandover | None:
    """The newest handover made before ``before`` (for ``team``, or any team)."""
    query = select(ShiftHandover).where(ShiftHandover.created_at <= before)
    if team is not None:
        query = query.where(ShiftHandover.team == team)
    return session.execute(
        query.order_by(ShiftHandover.created_at.desc(), ShiftHandover.id.desc()).limit(1)
    ).scalar_one_or_none()


def acknowledge(session: Session, handover_id: int, *, user_id: int, now: datetime) -> ShiftHandover:
    handover = session.get(ShiftHandover, handover_id)
    if handover is None:
        raise ConsoleError("no such handover")
    if handover.receiving_id is not None and handover.receiving_id != user_id:
        raise ConsoleError("only the receiving person acknowledges the handover")
    if handover.acknowledged_at is None:
        handover.acknowledged_at = now
        if handover.receiving_id is None:
            handover.receiving_id = user_id
    return handover
